package mysql

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"database/sql/driver"
	"errors"
	"io"
	"net"
	"slices"
	"sort"
	"strings"
	"syscall"

	mysqldrv "github.com/go-sql-driver/mysql"

	"github.com/sluicehq/sluice/adapters"
)

// class is how a failed statement is handled.
type class int

const (
	// classTransient: retry later (deadlock, lost connection, read-only
	// server during a failover).
	classTransient class = iota
	// classUnavailable: the server as a whole cannot be used now (refused
	// connection, login or database refused, missing table or privilege).
	classUnavailable
	// classRow: the server rejected the data of some row; bisecting the
	// batch finds it, the other rows are written.
	classRow
	// classStatement: the statement itself is wrong (bad SQL in columns or
	// on_consume): every row of it fails, bisecting cannot help.
	classStatement
)

// Server error numbers (MySQL and MariaDB share them unless noted).
var serverClasses = map[uint16]class{
	// Row-level data errors: permanent for the row.
	1022: classRow, // can't write; duplicate key
	1048: classRow, // column cannot be null
	1054: classRow, // unknown column (a record field the table lacks)
	1062: classRow, // duplicate entry
	1153: classRow, // packet bigger than max_allowed_packet (one huge row)
	1118: classRow, // row size too large
	1138: classRow, // invalid use of NULL value
	1216: classRow, // cannot add or update a child row (FK, old code)
	1217: classRow, // cannot delete or update a parent row (FK, old code)
	1263: classRow, // column set to default: NULL supplied to NOT NULL
	1264: classRow, // out of range value
	1265: classRow, // data truncated
	1292: classRow, // incorrect datetime/date/time/decimal value
	1300: classRow, // invalid character string
	1364: classRow, // field doesn't have a default value
	1366: classRow, // incorrect integer/string value
	1367: classRow, // illegal value
	1406: classRow, // data too long
	1411: classRow, // incorrect value for function
	1416: classRow, // cannot get geometry object
	1451: classRow, // FK: cannot delete or update a parent row
	1452: classRow, // FK: cannot add or update a child row
	1557: classRow, // FK: duplicate entry in a foreign-keyed table
	1586: classRow, // duplicate entry for key
	1690: classRow, // value out of range (BIGINT arithmetic)
	1859: classRow, // duplicate entry for key (FK)
	1918: classRow, // MariaDB: illegal value when converting
	3140: classRow, // MySQL: invalid JSON text
	3819: classRow, // MySQL: check constraint violated
	4025: classRow, // MariaDB: CONSTRAINT failed (json_valid, CHECK)

	// The statement is wrong: every row fails.
	1052: classStatement, // ambiguous column
	1064: classStatement, // syntax error
	1110: classStatement, // column specified twice
	1136: classStatement, // column count doesn't match
	1305: classStatement, // function does not exist
	1582: classStatement, // incorrect parameter count in call to native function

	// Transient.
	1020: classTransient, // record has changed since last read
	1053: classTransient, // server shutdown in progress
	1158: classTransient, // error reading communication packets
	1159: classTransient, // timeout reading communication packets
	1160: classTransient, // error writing communication packets
	1161: classTransient, // timeout writing communication packets
	1180: classTransient, // got error during COMMIT
	1181: classTransient, // got error during ROLLBACK
	1205: classTransient, // lock wait timeout exceeded
	1213: classTransient, // deadlock found
	1290: classTransient, // --read-only (a replica during failover)
	1317: classTransient, // query execution was interrupted
	1637: classTransient, // too many active concurrent transactions
	1792: classTransient, // read-only transaction
	1836: classTransient, // running in read-only mode
	1927: classTransient, // MariaDB: connection was killed
	1969: classTransient, // MariaDB: statement timeout (max_statement_time)
	3024: classTransient, // MySQL: max_execution_time exceeded
	4031: classTransient, // MySQL: disconnected by the server for inactivity

	// The server cannot be used now: back off without charging attempts.
	1040: classUnavailable, // too many connections
	1044: classUnavailable, // access denied to database
	1045: classUnavailable, // access denied (login)
	1049: classUnavailable, // unknown database
	1129: classUnavailable, // host blocked
	1130: classUnavailable, // host not allowed to connect
	1142: classUnavailable, // command denied (missing privilege)
	1143: classUnavailable, // column privilege denied
	1146: classUnavailable, // table doesn't exist
	1203: classUnavailable, // max_user_connections
	1226: classUnavailable, // user resource limit exceeded
	1227: classUnavailable, // access denied; privilege needed
	1251: classUnavailable, // client does not support the authentication protocol
	1698: classUnavailable, // access denied (auth plugin)
	1862: classUnavailable, // password expired
}

// classify tells how to handle err, an error of the driver or database/sql.
func classify(err error) class {
	var me *mysqldrv.MySQLError
	if errors.As(err, &me) {
		if c, ok := serverClasses[me.Number]; ok {
			return c
		}
		return classTransient
	}
	if errors.Is(err, mysqldrv.ErrPktTooLarge) {
		return classRow // one row larger than max_allowed_packet
	}
	var opErr *net.OpError
	switch {
	case errors.As(err, &opErr) && opErr.Op == "dial",
		errors.Is(err, syscall.ECONNREFUSED),
		errors.Is(err, syscall.EHOSTUNREACH),
		errors.Is(err, syscall.ENETUNREACH):
		return classUnavailable
	}
	var dnsErr *net.DNSError
	var certErr *tls.CertificateVerificationError
	var unknownAuth x509.UnknownAuthorityError
	var hostErr x509.HostnameError
	var invalid x509.CertificateInvalidError
	switch {
	case errors.As(err, &dnsErr), errors.As(err, &certErr), errors.As(err, &unknownAuth),
		errors.As(err, &hostErr), errors.As(err, &invalid),
		errors.Is(err, mysqldrv.ErrNoTLS), errors.Is(err, mysqldrv.ErrCleartextPassword),
		errors.Is(err, mysqldrv.ErrNativePassword), errors.Is(err, mysqldrv.ErrOldPassword),
		errors.Is(err, mysqldrv.ErrUnknownPlugin), errors.Is(err, mysqldrv.ErrOldProtocol):
		return classUnavailable
	}
	return classTransient
}

// isConnLoss reports whether err means the connection broke (as opposed to
// a statement the server refused).
func isConnLoss(err error) bool {
	var me *mysqldrv.MySQLError
	if errors.As(err, &me) {
		switch me.Number {
		case 1053, 1158, 1159, 1160, 1161, 1927, 4031:
			return true
		}
		return false
	}
	var ne net.Error
	return errors.Is(err, driver.ErrBadConn) || errors.Is(err, mysqldrv.ErrInvalidConn) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) ||
		errors.As(err, &ne) || classify(err) == classUnavailable
}

// kindOf maps a class to the engine's error kinds.
func (c class) kind() adapters.Kind {
	switch c {
	case classRow, classStatement:
		return adapters.Permanent
	case classUnavailable:
		return adapters.Unavailable
	}
	return adapters.Transient
}

// classified marks err with the kind its class implies.
func classified(err error) error {
	if err == nil || errors.Is(err, context.Canceled) {
		return err
	}
	return adapters.WithKind(classify(err).kind(), err)
}

// redactor removes known secrets from error and log text.
type redactor struct{ secrets []string }

const mask = "[redacted]"

// add remembers a secret. Secrets are kept longest first, so that a DSN is
// masked whole before its password.
func (r *redactor) add(s string) {
	if s == "" {
		return
	}
	i := sort.Search(len(r.secrets), func(i int) bool { return len(r.secrets[i]) < len(s) })
	r.secrets = slices.Insert(r.secrets, i, s)
}

func (r *redactor) string(s string) string {
	if r == nil {
		return s
	}
	for _, sec := range r.secrets {
		s = strings.ReplaceAll(s, sec, mask)
	}
	return s
}

// wrap returns err with its text redacted. errors.As and errors.Is still see
// the original chain, for classification.
func (r *redactor) wrap(err error) error {
	if err == nil {
		return nil
	}
	msg := r.string(err.Error())
	if r != nil && msg == err.Error() {
		return err
	}
	return &redactedError{msg: msg, err: err}
}

type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }
