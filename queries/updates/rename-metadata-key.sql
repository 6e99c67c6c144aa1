-- Rename a user_metadata key: language becomes locale (the old key is removed by naming it
-- with NULL); every other key stays as it is.
SELECT user_id,
       user_metadata->'language' AS "user_metadata.locale",
       NULL AS "user_metadata.language"
FROM users
WHERE json_contains(user_metadata, 'language')
