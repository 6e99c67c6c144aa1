-- Users inactive since a date: no login since 2023-06-01 (change the date to yours).
SELECT user_id, email, last_login, logins_count
FROM users
WHERE last_login IS NULL OR last_login < '2023-06-01'
ORDER BY last_login NULLS FIRST, user_id
