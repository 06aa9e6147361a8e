-- description: App Store transaction ids recorded in more than one purchase row.
-- severity: warning
-- offender: transaction_id
SELECT transaction_id,
       count(*) AS purchases,
       array_agg(id ORDER BY id) AS purchase_ids,
       count(DISTINCT user_id) AS users,
       min(purchased_at) AS first_purchased_at,
       max(created_at) AS last_recorded_at
FROM purchases
GROUP BY transaction_id
HAVING count(*) > 1
ORDER BY min(purchased_at), transaction_id
