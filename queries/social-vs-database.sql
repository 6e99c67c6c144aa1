-- Social versus database users: users by the kind of their primary identity.
SELECT CASE
         WHEN identities->0->>'isSocial' = 'true' THEN 'social'
         WHEN identities->0->>'provider' = 'auth0' THEN 'database'
         ELSE 'other (' || (identities->0->>'provider') || ')'
       END AS kind,
       count(*) AS users
FROM users
GROUP BY 1
ORDER BY users DESC, kind
