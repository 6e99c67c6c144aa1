-- Add a role: users of a tenant (app_metadata.tenant_id) get "beta" in app_metadata.roles,
-- next to the roles they have ([+] adds it unless it is there already).
SELECT user_id, 'beta' AS "app_metadata.roles[+]"
FROM users
WHERE app_metadata->>'tenant_id' IS NOT NULL
