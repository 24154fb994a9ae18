package httpadapter

import (
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// limiters holds one token bucket per client address. Buckets idle for
// longer than limiterIdle are forgotten, so the map stays as small as the
// set of active clients.
type limiters struct {
	rate  rate.Limit
	burst int

	mu      sync.Mutex // guards the fields below
	clients map[string]*clientLimiter
	swept   time.Time
}

type clientLimiter struct {
	lim  *rate.Limiter
	seen time.Time
}

const limiterIdle = 5 * time.Minute

func newLimiters(perSecond float64, burst int) *limiters {
	return &limiters{rate: rate.Limit(perSecond), burst: burst, clients: map[string]*clientLimiter{}, swept: time.Now()}
}

// allow takes a token from client's bucket at now.
func (l *limiters) allow(client string, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Sub(l.swept) > time.Minute {
		for k, c := range l.clients {
			if now.Sub(c.seen) > limiterIdle {
				delete(l.clients, k)
			}
		}
		l.swept = now
	}
	c := l.clients[client]
	if c == nil {
		c = &clientLimiter{lim: rate.NewLimiter(l.rate, l.burst)}
		l.clients[client] = c
	}
	c.seen = now
	return c.lim.AllowN(now, 1)
}
