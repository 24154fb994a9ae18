-- Target table of examples/csv-to-mysql.
CREATE TABLE IF NOT EXISTS orders (
  order_id   INT PRIMARY KEY,
  customer   VARCHAR(80) NOT NULL,
  amount     DECIMAL(12,2) NOT NULL,
  ordered_at DATE NOT NULL,
  region     VARCHAR(8) NOT NULL,
  loaded_at  TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6) ON UPDATE CURRENT_TIMESTAMP(6)
);
