-- The same email in more than one connection: accounts to link or merge (emails compared
-- without regard to case).
SELECT lower(email) AS email,
       count(DISTINCT identities->0->>'connection') AS connections,
       string_agg(DISTINCT identities->0->>'connection', ' | ' ORDER BY identities->0->>'connection') AS names
FROM users
WHERE email IS NOT NULL
GROUP BY 1
HAVING count(DISTINCT identities->0->>'connection') > 1
ORDER BY email
