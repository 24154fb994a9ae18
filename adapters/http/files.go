package httpadapter

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// files resolves the files a configuration names relative to the pipeline
// file's directory.
type files struct{ baseDir string }

func (f files) path(p string) string {
	if p == "" || filepath.IsAbs(p) || f.baseDir == "" {
		return p
	}
	return filepath.Join(f.baseDir, p)
}

// secret reads a file holding a secret (a token, a password, a header
// value) and trims surrounding white space. The error names the key and
// the file, never the content.
func (f files) secret(key, name string) (string, error) {
	b, err := os.ReadFile(f.path(name))
	if err != nil {
		return "", fmt.Errorf("%s: %w", key, err)
	}
	s := strings.TrimSpace(string(b))
	if s == "" {
		return "", fmt.Errorf("%s: %s is empty", key, f.path(name))
	}
	return s, nil
}

// certPool reads PEM CA certificates.
func (f files) certPool(key, name string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(f.path(name))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", key, err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s: no PEM certificate in %s", key, f.path(name))
	}
	return pool, nil
}

// keyPair loads a certificate and its key.
func (f files) keyPair(certKey, cert, key string) (tls.Certificate, error) {
	c, err := tls.LoadX509KeyPair(f.path(cert), f.path(key))
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("%s: %w", certKey, err)
	}
	return c, nil
}
