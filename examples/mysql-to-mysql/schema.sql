-- Source and target tables of examples/mysql-to-mysql, with sample rows.
CREATE TABLE IF NOT EXISTS erp_orders (
  id         INT AUTO_INCREMENT PRIMARY KEY,
  customer   VARCHAR(80) NOT NULL,
  amount     DECIMAL(12,2) NOT NULL,
  status     ENUM('open','paid','shipped','cancelled') NOT NULL,
  details    JSON,
  exported   TINYINT NOT NULL DEFAULT 0,
  updated_at DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6) ON UPDATE CURRENT_TIMESTAMP(6),
  KEY by_change (updated_at, id)
);

CREATE TABLE IF NOT EXISTS report_orders (
  id         INT PRIMARY KEY,
  customer   VARCHAR(80) NOT NULL,
  amount     DECIMAL(12,2) NOT NULL,
  status     VARCHAR(12) NOT NULL,
  details    JSON,
  updated_at DATETIME(6) NOT NULL
);

INSERT INTO erp_orders (customer, amount, status, details, updated_at) VALUES
  ('ACME Corp', 1299.00, 'paid',    '{"lines": 3, "rush": true}', '2026-11-23 09:00:00'),
  ('Globex',       4.50, 'open',    '{"lines": 1}',               '2026-11-23 09:00:00'),
  ('Initech',  25000.00, 'shipped', NULL,                         '2026-11-23 09:00:00'),
  ('Umbrella',    19.99, 'cancelled', '{"reason": "duplicate"}',  '2026-11-23 09:15:30');
