package mysql

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	mysqldrv "github.com/go-sql-driver/mysql"

	"github.com/sluicehq/sluice/adapters"
	"github.com/sluicehq/sluice/internal/testenv"
)

// writeCA writes a self-signed CA and returns its PEM path, certificate and
// key.
func writeCA(t *testing.T, dir, name string) (string, *x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	path := filepath.Join(dir, name+".pem")
	writePEM(t, path, "CERTIFICATE", der)
	return path, cert, key
}

func writePEM(t *testing.T, path, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TLS modes against a private server with a certificate for 127.0.0.1 and
// localhost, signed by a CA of the test.
func TestTLS(t *testing.T) {
	dir := t.TempDir()
	caFile, ca, caKey := writeCA(t, dir, "ca")
	otherCA, _, _ := writeCA(t, dir, "other-ca")
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "mariadb"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		DNSNames: []string{"localhost"}, IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile := filepath.Join(dir, "server.pem"), filepath.Join(dir, "server-key.pem")
	writePEM(t, certFile, "CERTIFICATE", der)
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	writePEM(t, keyFile, "PRIVATE KEY", kder)

	srv := testenv.StartMariaDB(t, "--ssl-ca="+caFile, "--ssl-cert="+certFile, "--ssl-key="+keyFile)
	dsn := srv.CreateDatabase(t)
	mustExec(t, testDB(t, dsn), "CREATE TABLE t (id INT PRIMARY KEY)")
	cfg, _ := mysqldrv.ParseDSN(dsn)
	base := map[string]any{"host": "127.0.0.1", "port": srv.Port(), "user": "root", "database": cfg.DBName, "table": "t", "connect_timeout": "2s"}
	cases := []struct {
		name   string
		raw    map[string]any
		cipher bool   // the session is encrypted
		fail   string // Connect fails (unavailable) with this text
	}{
		{"disabled", with(base, "tls", "disabled"), false, ""},
		{"preferred", with(base), true, ""},
		{"required", with(base, "tls", "required"), true, ""},
		{"required, chain checked", with(base, "tls", "required", "ca_file", caFile), true, ""},
		{"required, wrong CA", with(base, "tls", "required", "ca_file", otherCA), false, "certificate signed by unknown authority"},
		{"verify by IP", with(base, "tls", "verify", "ca_file", caFile), true, ""},
		{"verify by name", with(base, "host", "localhost", "tls", "verify", "ca_file", caFile), true, ""},
		{"verify, system roots", with(base, "tls", "verify"), false, "certificate signed by unknown authority"},
		{"dsn's own tls", with(map[string]any{"dsn": dsn + "?tls=skip-verify", "table": "t"}), true, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			sk, err := newSink(decode(t, SinkSpec, c.raw), resources(t))
			if err != nil {
				t.Fatal(err)
			}
			s := sk.(*Sink)
			defer s.Close(context.Background())
			err = s.Connect(context.Background())
			if c.fail != "" {
				if err == nil || !strings.Contains(err.Error(), c.fail) || adapters.KindOf(err) != adapters.Unavailable {
					t.Fatalf("Connect = %v (%v), want unavailable: %s", err, adapters.KindOf(err), c.fail)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var name, cipher string
			if err := s.pool.db.QueryRow("SHOW SESSION STATUS LIKE 'Ssl_cipher'").Scan(&name, &cipher); err != nil {
				t.Fatal(err)
			}
			if (cipher != "") != c.cipher {
				t.Fatalf("Ssl_cipher = %q, want encrypted: %v", cipher, c.cipher)
			}
			if err := s.Write(context.Background(), records(1, func(int) adapters.Record { return adapters.Record{"id": int64(len(c.name))} })); err != nil && !strings.Contains(err.Error(), "Duplicate") {
				t.Fatal(err)
			}
		})
	}
}
