package redisshield

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/gomodule/redigo/redis"
)

func TestTheSlotOfAKeyIsCRC16OfItsHashTagAsTheServerComputesIt(t *testing.T) {
	s := startServer(t, true) // KEYSLOT needs cluster mode, not slots
	for _, key := range []string{"user:42", "{user:42}:sec", "a{b}c", "{}x", "x{}y{z}", "{{a}}", "123456789", "é"} {
		want, _ := redis.Int(s.do("CLUSTER", "KEYSLOT", key), nil)
		if got := Slot(key); got != want {
			t.Errorf("Slot(%q) = %d, the server says %d", key, got, want)
		}
	}
	if crc16([]byte("123456789")) != 0x31C3 {
		t.Fatal("CRC16/XMODEM of 123456789 is 0x31C3")
	}
}

func clusterLimiter(t *testing.T, c *cluster, policies ...Policy) (*Limiter, *Client) {
	client := newClient(t, c.nodes[0].url()+"?cluster=yes")
	return newLimiter(t, client, LimiterOptions{DenyCacheSize: -1, Timeout: 2 * time.Second}, policies...), client
}

func TestAClusterClientSendsEveryPolicyOfAKeyToTheNodeOfItsHashTagInOneRoundTrip(t *testing.T) {
	c := startCluster(t)
	hourly := Policy{Name: "hourly", Algorithm: Window, Limit: 100, Period: time.Hour}
	l, client := clusterLimiter(t, c, perMinute, hourly)
	for i := 0; i < 20; i++ {
		key := "user:" + strconv.Itoa(i)
		if Slot(l.Key(key, "per-minute")) != Slot(l.Key(key, "hourly")) || Slot(l.Key(key, "hourly")) != Slot(key) {
			t.Fatalf("the policies' keys of %s should share the slot of %s", key, key)
		}
		owner := c.owner(Slot(key))
		before := owner.commandCalls()
		sent := client.CommandsSent()
		res := limit(t, l, key, 1)
		if !res.Allowed || res.Remaining != 2 {
			t.Fatalf("want allowed with 2 left, got %+v", res)
		}
		after := owner.commandCalls()
		if after["shield.limit"]-before["shield.limit"] != 1 {
			t.Fatalf("%s's node %d should have served one SHIELD.limit for both policies: %v -> %v", key, owner.port, before, after)
		}
		if i > 0 && client.CommandsSent()-sent != 1 { // the first call also loads the slot map
			t.Fatalf("want exactly one command, no redirection, got %d", client.CommandsSent()-sent)
		}
	}
}

func TestAClusterClientFollowsMovedAfterASlotMovesAndUpdatesItsSlotMap(t *testing.T) {
	c := startCluster(t)
	l, client := clusterLimiter(t, c, perMinute)
	key := "mover"
	slot := Slot(key)
	limit(t, l, key, 1) // 2 left, on the slot's first owner
	from := c.owner(slot)
	to := c.nodes[0]
	if to == from {
		to = c.nodes[1]
	}
	c.beginMove(slot, from, to)
	c.finishMove(slot, to)
	sent := client.CommandsSent()
	ranOnOldOwner := from.commandCalls()["shield.limit"]
	res := limit(t, l, key, 1)
	if from.commandCalls()["shield.limit"] != ranOnOldOwner {
		t.Fatalf("the old owner ran SHIELD.limit for slot %d, which it no longer serves, instead of answering MOVED: "+
			"the server does not redirect SHIELD.limit (got %+v)", slot, res)
	}
	if !res.Allowed || res.Remaining != 1 {
		t.Fatalf("the moved bucket should go on counting (1 left), got %+v", res)
	}
	// One SHIELD.limit to the old owner (answered MOVED; the server counts it as rejected), one to
	// the new.
	if client.CommandsSent()-sent != 2 || to.commandCalls()["shield.limit"] != 1 {
		t.Fatalf("want SHIELD.limit sent twice, the second served by the new owner; sent %d", client.CommandsSent()-sent)
	}
	m, _ := client.slots.Load().(*slotMap)
	if m[slot] != to.addr() {
		t.Fatalf("the slot map should name %s for slot %d, not %s", to.addr(), slot, m[slot])
	}
	if res := limit(t, l, key, 1); !res.Allowed || res.Remaining != 0 || to.commandCalls()["shield.limit"] != 2 {
		t.Fatalf("the next call should go straight to the new owner, got %+v", res)
	}
}

func TestAClusterClientFollowsAskWhileASlotMigrates(t *testing.T) {
	c := startCluster(t)
	l, _ := clusterLimiter(t, c, perMinute)
	key := "asker"
	slot := Slot(key)
	limit(t, l, key, 1)
	from := c.owner(slot)
	to := c.nodes[0]
	if to == from {
		to = c.nodes[1]
	}
	c.beginMove(slot, from, to) // the key is on the target, the slot still the source's: ASK
	ranOnSource := from.commandCalls()["shield.limit"]
	res := limit(t, l, key, 1)
	if from.commandCalls()["shield.limit"] != ranOnSource {
		t.Fatalf("the source ran SHIELD.limit for a key it has migrated instead of answering ASK: "+
			"the server does not redirect SHIELD.limit (got %+v)", res)
	}
	if !res.Allowed || res.Remaining != 1 {
		t.Fatalf("the migrated bucket should go on counting (1 left), got %+v", res)
	}
	if calls := to.commandCalls(); calls["asking"] != 1 || calls["shield.limit"] != 1 {
		t.Fatalf("want ASKING then SHIELD.limit on the target, got %v", calls)
	}
	c.finishMove(slot, to)
	if res := limit(t, l, key, 1); !res.Allowed || res.Remaining != 0 {
		t.Fatalf("after the move, got %+v", res)
	}
}

func TestAClusterClientFindsTheClusterFromAnyNodeAndSurvivesAKilledSeed(t *testing.T) {
	c := startCluster(t)
	client := newClient(t, "redis://"+c.nodes[0].addr()+","+c.nodes[1].addr()+"?cluster=yes")
	l := newLimiter(t, client, LimiterOptions{Logger: func(string) {}}, perMinute)
	limit(t, l, "x", 1)
	// A key that the killed seed does not serve still works: the map is known.
	var other string
	for i := 0; ; i++ {
		other = "k" + strconv.Itoa(i)
		if c.owner(Slot(other)) != c.nodes[0] {
			break
		}
	}
	c.nodes[0].kill()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if res, err := l.Limit(ctx, other, 1); err != nil || !res.Allowed {
		t.Fatalf("want %s served by its live node, got %+v, %v", other, res, err)
	}
}
