package comfysim

import (
	"math"
	"math/big"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/require"
)

func TestPyFloatRepr(t *testing.T) {
	t.Parallel()
	cases := map[float64]string{
		0: "0.0", 1: "1.0", -2.5: "-2.5", 0.1: "0.1", 100: "100.0", 1e16: "1e+16", 1.5e16: "1.5e+16",
		9999999999999998: "9999999999999998.0", 0.0001: "0.0001", 0.00001: "1e-05", 1.2345e-7: "1.2345e-07",
		104857600: "104857600.0", 47.6: "47.6", 1e100: "1e+100", 123456789.125: "123456789.125",
	}
	for f, want := range cases {
		require.Equal(t, want, pyFloatRepr(f), "%v", f)
	}
	require.Equal(t, "NaN", pyFloatJSON(math.NaN()))
	require.Equal(t, "-Infinity", pyFloatJSON(math.Inf(-1)))
}

func TestEncodePy(t *testing.T) {
	t.Parallel()
	v, err := decodeJSONBytes([]byte(`{"b": [1, 2.0, "é\u2028<&>", null, true], "a": {"x": 18446744073709551615, "y": 1e400}, "b": "last"}`))
	require.NoError(t, err)
	require.Equal(t, `{"b": "last", "a": {"x": 18446744073709551615, "y": Infinity}}`, string(encodePy(v)))
	v, err = decodeJSONBytes([]byte(`["é\u2028<&>\ud83d\ude00", 1e5, -0, 0.5]`))
	require.NoError(t, err)
	require.Equal(t, `["\u00e9\u2028<&>\ud83d\ude00", 100000.0, 0, 0.5]`, string(encodePy(v)))
	_, err = decodeJSONBytes([]byte(`{} {}`))
	require.Error(t, err)
}

func TestPyReprAndStr(t *testing.T) {
	t.Parallel()
	require.Equal(t, `'abc'`, pyRepr("abc"))
	require.Equal(t, `"it's"`, pyRepr("it's"))
	require.Equal(t, `'a\'b"c'`, pyRepr(`a'b"c`))
	require.Equal(t, `['a', 1, 2.0, None, True]`, pyRepr([]any{"a", bigInt(1), pyFloat(2), nil, true}))
	o := obj("k", "v", "n", []any{})
	require.Equal(t, `{'k': 'v', 'n': []}`, pyStr(o))
}

func TestPyConversions(t *testing.T) {
	t.Parallel()
	i, perr := pyIntConv(" 1_000 ")
	require.Nil(t, perr)
	require.Equal(t, "1000", pyStr(i))
	i, perr = pyIntConv(pyFloat(-3.9))
	require.Nil(t, perr)
	require.Equal(t, "-3", pyStr(i))
	_, perr = pyIntConv("3.5")
	require.Equal(t, "invalid literal for int() with base 10: '3.5'", perr.msg)
	_, perr = pyIntConv(nil)
	require.Equal(t, "int() argument must be a string, a bytes-like object or a real number, not 'NoneType'", perr.msg)
	f, perr := pyFloatConv(" -inf")
	require.Nil(t, perr)
	require.True(t, math.IsInf(float64(f.(pyFloat)), -1))
	_, perr = pyFloatConv("x")
	require.Equal(t, "could not convert string to float: 'x'", perr.msg)
	require.Equal(t, "True", pyStr(true))
	require.True(t, pyTruthy("false"))
}

func TestPathHelpers(t *testing.T) {
	t.Parallel()
	require.Equal(t, ".", pyNormpath(""))
	require.Equal(t, "video/ComfyUI", pyNormpath("video/./x/../ComfyUI/"))
	require.Equal(t, "../a", pyNormpath("../a"))
	require.Equal(t, "//a", pyNormpath("//a"))
	require.Equal(t, "", pyDirname("ComfyUI"))
	require.Equal(t, "a/b", pyDirname("a/b/c"))
	require.Equal(t, "/", pyDirname("/x"))
	n, d := annotatedFilepath("x.png [output]")
	require.Equal(t, []string{"x.png", "output"}, []string{n, d})
	s1, s2 := splitExt("foo.tar.png")
	require.Equal(t, []string{"foo.tar", ".png"}, []string{s1, s2})
	s1, s2 = splitExt(".hidden")
	require.Equal(t, []string{".hidden", ""}, []string{s1, s2})
}

// TestHeapMatchesPython replays heapq on the numbers of TestQueuePriority.
func TestHeapMatchesPython(t *testing.T) {
	t.Parallel()
	var h []*queueItem
	for i, n := range []any{bigInt(5), bigInt(3), bigInt(8), bigInt(1), bigInt(9), bigInt(2)} {
		heapPush(&h, &queueItem{number: n, promptID: string(rune('a' + i))})
	}
	ids := func() string {
		var s []string
		for _, it := range h {
			s = append(s, it.promptID)
		}
		return strings.Join(s, "")
	}
	// heapq.heappush of 5,3,8,1,9,2 gives [1, 3, 2, 5, 9, 8].
	require.Equal(t, "dbfaec", ids())
	require.Equal(t, "d", heapPop(&h).promptID)
	// heappop → [2, 3, 8, 5, 9]
	require.Equal(t, "fbcae", ids())
}

// TestReconnectGotcha: when the old connection of a clientId closes after
// the new one registered, it unregisters the new one (ComfyUI removes by
// key), so the new socket silently stops receiving.
func TestReconnectGotcha(t *testing.T) {
	t.Parallel()
	s, err := New(Options{})
	require.NoError(t, err)
	ts := httptest.NewServer(s)
	t.Cleanup(func() { _ = s.Close(); ts.Close() })
	url := "ws" + strings.TrimPrefix(ts.URL, "http") + "/ws?clientId=dup"
	registered := func() *wsConn {
		inst := s.current()
		inst.mu.Lock()
		defer inst.mu.Unlock()
		return inst.sockets["dup"]
	}
	old, _, err := websocket.DefaultDialer.Dial(url, nil)
	require.NoError(t, err)
	_, _, err = old.ReadMessage()
	require.NoError(t, err)
	first := registered()
	require.NotNil(t, first)

	fresh, _, err := websocket.DefaultDialer.Dial(url, nil)
	require.NoError(t, err)
	defer fresh.Close()
	_, _, err = fresh.ReadMessage()
	require.NoError(t, err)
	second := registered()
	require.NotNil(t, second)
	require.NotSame(t, first, second)

	require.NoError(t, old.Close())
	require.Eventually(t, func() bool { return registered() == nil }, 10*time.Second, time.Millisecond,
		"the old handler removed the registration by key")
}

func bigInt(i int64) *big.Int { return big.NewInt(i) }
