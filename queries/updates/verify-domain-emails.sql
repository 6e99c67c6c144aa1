-- Verify the emails of a domain: every user of example.com gets email_verified true
-- (upsert rows: prepare --upsert --base EXPORT --file this).
SELECT user_id, true AS email_verified
FROM users
WHERE lower(email) LIKE '%@example.com'
