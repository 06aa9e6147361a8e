-- revenue.daily's columns, from the raw tables and from the rollups alike. Needs the CTE `revenue`
-- (day, currency, gross, refunds, proceeds, purchases, refunded_purchases, paying_users,
-- credits_sold; NULL where nothing was counted, proceeds NULL when not configured).
SELECT v.day,
       v.currency,
       COALESCE(v.gross, 0)                                  AS gross,
       COALESCE(v.refunds, 0)                                AS refunds,
       COALESCE(v.gross, 0) - COALESCE(v.refunds, 0)         AS net,
       v.proceeds                                            AS proceeds,
       COALESCE(v.purchases, 0)                              AS purchases,
       COALESCE(v.refunded_purchases, 0)                     AS refunded_purchases,
       COALESCE(v.paying_users, 0)                           AS paying_users,
       CAST(v.gross AS float8) / NULLIF(v.paying_users, 0)   AS arppu,
       COALESCE(v.credits_sold, 0)                           AS credits_sold
FROM revenue v
ORDER BY v.day
