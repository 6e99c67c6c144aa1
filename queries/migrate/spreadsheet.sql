-- userport prepare --table people=spreadsheet.csv --file queries/migrate/spreadsheet.sql -o import/
--
-- A spreadsheet → Auth0: one user a row, with the column names a person would write.
-- Verified takes yes/no, true/false, 1/0; Roles is a list separated by `;`; Password Hash
-- holds bcrypt hashes (rows without one are imported without a password); Plan, Roles and
-- Signed Up go to the metadata.
SELECT
    "Email"                                    AS email,
    "Verified"                                 AS email_verified,
    "First Name"                               AS given_name,
    "Last Name"                                AS family_name,
    "First Name" || ' ' || "Last Name"         AS name,
    bcrypt_password("Password Hash")           AS custom_password_hash,
    "Plan"                                     AS "user_metadata.plan",
    "Signed Up"                                AS "user_metadata.signed_up",
    CASE WHEN "Roles" IS NULL THEN NULL ELSE string_to_array("Roles", ';') END AS "app_metadata.roles"
FROM people
