-- An upsert file that sets email_verified to true for a chosen set: every database user
-- of the example.com domain. Write it as JSON and import it with upsert.
SELECT email, true AS email_verified
FROM users
WHERE identities->0->>'provider' = 'auth0'
  AND lower(email) LIKE '%@example.com'
ORDER BY email
