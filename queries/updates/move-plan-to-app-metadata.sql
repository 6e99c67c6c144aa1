-- Move a value from user_metadata to app_metadata: the plan is the application's to decide,
-- so it leaves user_metadata (where users can edit it) for app_metadata.
SELECT user_id,
       user_metadata->'plan' AS "app_metadata.plan",
       NULL AS "user_metadata.plan"
FROM users
WHERE json_contains(user_metadata, 'plan')
