package redisshield

import (
	"fmt"
	"strconv"
	"strings"
)

// slotCount is the number of hash slots of a Redis Cluster.
const slotCount = 16384

// crc16 is the CRC16-CCITT (XMODEM: polynomial 0x1021, initial value 0) that Redis Cluster uses to
// map a key onto a slot, computed bit by bit (a table buys nothing at one call per key).
func crc16(data []byte) uint16 {
	var crc uint16
	for _, b := range data {
		crc ^= uint16(b) << 8
		for i := 0; i < 8; i++ {
			if crc&0x8000 != 0 {
				crc = crc<<1 ^ 0x1021
			} else {
				crc <<= 1
			}
		}
	}
	return crc
}

// hashTag is the part of key that Redis Cluster hashes: the text between the first '{' and the
// first '}' after it, when that text is not empty; otherwise the whole key.
func hashTag(key string) string {
	open := strings.IndexByte(key, '{')
	if open < 0 {
		return key
	}
	end := strings.IndexByte(key[open+1:], '}')
	if end <= 0 {
		return key
	}
	return key[open+1 : open+1+end]
}

// Slot is the cluster hash slot of key (as CLUSTER KEYSLOT answers).
func Slot(key string) int {
	return int(crc16([]byte(hashTag(key))) % slotCount)
}

// slotMap says which node ("host:port") serves each slot; "" where none is known.
type slotMap [slotCount]string

// parseClusterSlots reads a CLUSTER SLOTS reply: an array of [start, end, primary, replicas...],
// each node an array [host, port, id, ...] (Redis 7 adds a map of metadata at the end, which is
// ignored). A node whose host is empty or "?" is reached at fallbackHost (the node that answered).
func parseClusterSlots(reply interface{}, fallbackHost string) (*slotMap, error) {
	ranges, ok := reply.([]interface{})
	if !ok {
		return nil, fmt.Errorf("redisshield: CLUSTER SLOTS replied %T, not an array", reply)
	}
	m := new(slotMap)
	for _, item := range ranges {
		fields, ok := item.([]interface{})
		if !ok || len(fields) < 3 {
			return nil, fmt.Errorf("redisshield: unexpected CLUSTER SLOTS entry %v", item)
		}
		start, err1 := asInt(fields[0])
		end, err2 := asInt(fields[1])
		node, ok := fields[2].([]interface{})
		if err1 != nil || err2 != nil || !ok || len(node) < 2 || start < 0 || end >= slotCount || start > end {
			return nil, fmt.Errorf("redisshield: unexpected CLUSTER SLOTS entry %v", item)
		}
		host := asString(node[0])
		port, err := asInt(node[1])
		if err != nil {
			return nil, fmt.Errorf("redisshield: unexpected CLUSTER SLOTS node %v", node)
		}
		if host == "" || host == "?" {
			host = fallbackHost
		}
		addr := joinHostPort(host, port)
		for slot := start; slot <= end; slot++ {
			m[slot] = addr
		}
	}
	return m, nil
}

// redirection is a MOVED or ASK error reply: "MOVED <slot> <host:port>".
type redirection struct {
	ask  bool
	slot int
	addr string
}

func parseRedirection(message string, fallbackHost string) (redirection, bool) {
	parts := strings.Fields(message)
	if len(parts) != 3 || (parts[0] != "MOVED" && parts[0] != "ASK") {
		return redirection{}, false
	}
	slot, err := strconv.Atoi(parts[1])
	if err != nil || slot < 0 || slot >= slotCount {
		return redirection{}, false
	}
	addr := parts[2]
	if strings.HasPrefix(addr, ":") { // an empty host: the node that answered
		addr = fallbackHost + addr
	}
	return redirection{ask: parts[0] == "ASK", slot: slot, addr: addr}, true
}

func joinHostPort(host string, port int64) string {
	if strings.Contains(host, ":") {
		return "[" + host + "]:" + strconv.FormatInt(port, 10)
	}
	return host + ":" + strconv.FormatInt(port, 10)
}

func asInt(v interface{}) (int64, error) {
	switch x := v.(type) {
	case int64:
		return x, nil
	case []byte:
		return strconv.ParseInt(string(x), 10, 64)
	case string:
		return strconv.ParseInt(x, 10, 64)
	}
	return 0, fmt.Errorf("redisshield: %v is not an integer", v)
}

func asString(v interface{}) string {
	switch x := v.(type) {
	case []byte:
		return string(x)
	case string:
		return x
	}
	return fmt.Sprint(v)
}
