-- The legacy schema the example runs against.
CREATE TABLE customers (
  id INT PRIMARY KEY,
  name VARCHAR(80) NOT NULL,
  credit_limit DECIMAL(12,2) NOT NULL
);
CREATE TABLE orders (
  id INT PRIMARY KEY,
  customer_id INT NOT NULL,
  amount DECIMAL(12,2) NOT NULL,
  KEY (customer_id)
);
INSERT INTO customers VALUES (1, 'Ada Lovelace', 5000.00), (2, 'Grace Hopper', 12000.00);
