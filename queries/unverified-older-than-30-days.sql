-- Unverified emails older than 30 days: users with an email they never verified, created
-- more than 30 days ago (candidates for a reminder or a clean-up).
SELECT user_id, email, created_at
FROM users
WHERE email IS NOT NULL
  AND email_verified = false
  AND CAST(created_at AS TIMESTAMP) < now() - INTERVAL '30 days'
ORDER BY created_at, user_id
