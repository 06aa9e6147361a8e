-- A group's revenue from priced_rows (shared/proceeds.sql), pasted into a SELECT list before the
-- query's own FROM priced_rows ... GROUP BY (day, product, currency, or the whole window):
-- gross (price of the sales), refunds (price of the refunds), purchases, refunded_purchases,
-- paying_users (distinct buyers in the group: not a sum of smaller groups' buyers), credits_sold
-- and proceeds (sales' less refunds' proceeds).
sum(price) FILTER (WHERE NOT refund)              AS gross,
sum(price) FILTER (WHERE refund)                  AS refunds,
count(*) FILTER (WHERE NOT refund)                AS purchases,
count(*) FILTER (WHERE refund)                    AS refunded_purchases,
count(DISTINCT user_id) FILTER (WHERE NOT refund) AS paying_users,
sum(credits) FILTER (WHERE NOT refund)            AS credits_sold,
sum(proceeds)                                     AS proceeds
