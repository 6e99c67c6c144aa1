-- Users who never logged in: no last_login and no (or zero) logins_count.
SELECT user_id, email, created_at
FROM users
WHERE last_login IS NULL AND coalesce(logins_count, 0) = 0
ORDER BY created_at NULLS LAST, user_id
