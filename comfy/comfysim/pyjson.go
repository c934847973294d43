package comfysim

// ComfyUI is a Python program: its JSON values are Python dicts (insertion
// ordered), arbitrary precision ints and floats, and it serialises them with
// json.dumps (", " and ": " separators, ASCII only). These files model those
// values so that the simulator keeps key order, keeps 2^64-1 seeds exact, and
// writes the same bytes a real server writes: dict.go the dict, pyjson_decode.go
// and pyjson_encode.go json.loads and json.dumps, pyrepr.go str() and repr(),
// pycompare.go truth, ==, ordering and hashing.
//
// A value is one of: nil, bool, string, *big.Int (Python int), pyFloat
// (Python float), []any (list), *object (dict).

// pyFloat is a Python float. It is written with Python's repr (1.0, 1e-05).
type pyFloat float64
