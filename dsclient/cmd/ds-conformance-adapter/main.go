package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
)

func main() {
	in := bufio.NewScanner(os.Stdin)
	in.Buffer(make([]byte, 1<<20), 256<<20)
	out := bufio.NewWriter(os.Stdout)
	a := newAdapter()
	defer a.shutdown()
	for in.Scan() {
		line := in.Bytes()
		if len(line) == 0 {
			continue
		}
		var cmd command
		var res any
		if err := json.Unmarshal(line, &cmd); err != nil {
			res = errorResult{Type: "error", CommandType: "init", ErrorCode: "PARSE_ERROR", Message: fmt.Sprintf("bad command: %v", err)}
		} else {
			res = a.handle(&cmd)
		}
		b, err := json.Marshal(res)
		if err != nil {
			b, _ = json.Marshal(errorResult{Type: "error", CommandType: cmd.Type, ErrorCode: "INTERNAL_ERROR", Message: err.Error()})
		}
		out.Write(b)
		out.WriteByte('\n')
		out.Flush()
		if cmd.Type == "shutdown" {
			return
		}
	}
}
