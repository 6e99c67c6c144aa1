-- Users by app_metadata role: how many users hold each role in app_metadata.roles.
SELECT json_get_str(role) AS role, count(*) AS users
FROM (SELECT unnest(json_get_array(app_metadata, 'roles')) AS role FROM users)
GROUP BY 1
ORDER BY users DESC, role
