package mysql

import (
	"context"
	"database/sql"
	"fmt"
	"regexp"
	"strings"
)

// tableName is a possibly schema-qualified table name from a config.
type tableName struct {
	schema, name string
}

func parseTableName(s string) (tableName, error) {
	bad := func() (tableName, error) {
		return tableName{}, fmt.Errorf("invalid table name %q (want table or schema.table, optionally `quoted`)", s)
	}
	rest := strings.TrimSpace(s)
	var parts []string
	for {
		var p string
		if strings.HasPrefix(rest, "`") {
			var b strings.Builder
			j := 1
			for ; ; j++ {
				if j >= len(rest) {
					return bad()
				}
				if rest[j] == '`' {
					if j+1 < len(rest) && rest[j+1] == '`' {
						b.WriteByte('`')
						j++
						continue
					}
					break
				}
				b.WriteByte(rest[j])
			}
			p, rest = b.String(), rest[j+1:]
		} else {
			j := strings.IndexByte(rest, '.')
			if j < 0 {
				j = len(rest)
			}
			p, rest = rest[:j], rest[j:]
		}
		if p == "" {
			return bad()
		}
		parts = append(parts, p)
		if rest == "" {
			break
		}
		if rest[0] != '.' || len(rest) == 1 || len(parts) == 2 {
			return bad()
		}
		rest = rest[1:]
	}
	if len(parts) == 2 {
		return tableName{schema: parts[0], name: parts[1]}, nil
	}
	return tableName{name: parts[0]}, nil
}

// quoted returns the name quoted for SQL: `schema`.`table`.
func (t tableName) quoted() string {
	if t.schema != "" {
		return quoteIdent(t.schema) + "." + quoteIdent(t.name)
	}
	return quoteIdent(t.name)
}

func (t tableName) String() string {
	if t.schema != "" {
		return t.schema + "." + t.name
	}
	return t.name
}

// writeIdents writes the quoted identifiers, comma-separated, each followed
// by suffix, and preceded by sep unless it is the first.
func writeIdents(b *strings.Builder, names []string, sep, suffix string) {
	for i, n := range names {
		if i > 0 {
			b.WriteByte(',')
			b.WriteString(sep)
		}
		b.WriteString(quoteIdent(n))
		b.WriteString(suffix)
	}
}

// quoteIdent quotes an identifier with backticks.
func quoteIdent(s string) string { return "`" + strings.ReplaceAll(s, "`", "``") + "`" }

// column is what information_schema says about a column.
type column struct {
	name     string
	dataType string // lower case: int, varchar, datetime, json, ...
	nullable bool
	json     bool
	unsigned bool
}

// tableInfo describes a table; column lookups ignore case, as MySQL does.
type tableInfo struct {
	name    tableName
	columns []column
	byName  map[string]int // lower-case name → index in columns
	primary []string       // primary key columns, in key order
}

func (ti *tableInfo) column(name string) (column, bool) {
	i, ok := ti.byName[strings.ToLower(name)]
	if !ok {
		return column{}, false
	}
	return ti.columns[i], true
}

// jsonColumns returns the lower-case names of the JSON columns.
func (ti *tableInfo) jsonColumns() map[string]bool {
	m := map[string]bool{}
	for _, c := range ti.columns {
		if c.json {
			m[strings.ToLower(c.name)] = true
		}
	}
	return m
}

var jsonValidRE = regexp.MustCompile("(?i)json_valid\\(`((?:[^`]|``)+)`\\)")

// errNoTable reports a table that does not exist; it is Unavailable (the
// table may be created later, by a migration) with a clear message.
type errNoTable struct{ name tableName }

func (e *errNoTable) Error() string {
	return fmt.Sprintf("table %s does not exist (or the user may not see it)", e.name)
}

// loadTable reads a table's columns and primary key from information_schema.
func loadTable(ctx context.Context, db *sql.DB, name tableName) (*tableInfo, error) {
	schema := any(nil)
	if name.schema != "" {
		schema = name.schema
	}
	rows, err := db.QueryContext(ctx, `SELECT COLUMN_NAME, DATA_TYPE, IS_NULLABLE, COLUMN_TYPE, COLUMN_KEY
FROM information_schema.COLUMNS
WHERE TABLE_SCHEMA = COALESCE(?, DATABASE()) AND TABLE_NAME = ?
ORDER BY ORDINAL_POSITION`, schema, name.name)
	if err != nil {
		return nil, fmt.Errorf("read columns of %s: %w", name, err)
	}
	defer rows.Close()
	ti := &tableInfo{name: name, byName: map[string]int{}}
	for rows.Next() {
		var c column
		var nullable, ctype, key string
		if err := rows.Scan(&c.name, &c.dataType, &nullable, &ctype, &key); err != nil {
			return nil, fmt.Errorf("read columns of %s: %w", name, err)
		}
		c.dataType = strings.ToLower(c.dataType)
		c.nullable = nullable == "YES"
		c.json = c.dataType == "json"
		c.unsigned = strings.Contains(strings.ToLower(ctype), "unsigned")
		ti.byName[strings.ToLower(c.name)] = len(ti.columns)
		ti.columns = append(ti.columns, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read columns of %s: %w", name, err)
	}
	if len(ti.columns) == 0 {
		return nil, &errNoTable{name}
	}
	// MariaDB's JSON is LONGTEXT with CHECK (json_valid(`col`)); MySQL has
	// no TABLE_NAME in this view (and a real JSON type), so a failure here
	// only means there is nothing to learn.
	if crow, err := db.QueryContext(ctx, `SELECT CHECK_CLAUSE FROM information_schema.CHECK_CONSTRAINTS
WHERE CONSTRAINT_SCHEMA = COALESCE(?, DATABASE()) AND TABLE_NAME = ?`, schema, name.name); err == nil {
		for crow.Next() {
			var clause string
			if crow.Scan(&clause) != nil {
				continue
			}
			for _, m := range jsonValidRE.FindAllStringSubmatch(clause, -1) {
				if i, ok := ti.byName[strings.ToLower(strings.ReplaceAll(m[1], "``", "`"))]; ok {
					ti.columns[i].json = true
				}
			}
		}
		crow.Close()
	}
	krows, err := db.QueryContext(ctx, `SELECT COLUMN_NAME FROM information_schema.STATISTICS
WHERE TABLE_SCHEMA = COALESCE(?, DATABASE()) AND TABLE_NAME = ? AND INDEX_NAME = 'PRIMARY'
ORDER BY SEQ_IN_INDEX`, schema, name.name)
	if err != nil {
		return nil, fmt.Errorf("read primary key of %s: %w", name, err)
	}
	defer krows.Close()
	for krows.Next() {
		var c string
		if err := krows.Scan(&c); err != nil {
			return nil, fmt.Errorf("read primary key of %s: %w", name, err)
		}
		ti.primary = append(ti.primary, c)
	}
	return ti, krows.Err()
}
