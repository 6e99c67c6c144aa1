-- Sign-ups per month by connection: how many users each connection gained each month.
SELECT substr(created_at, 1, 7) AS month,
       identities->0->>'connection' AS connection,
       count(*) AS signups
FROM users
WHERE created_at IS NOT NULL
GROUP BY 1, 2
ORDER BY month, connection
