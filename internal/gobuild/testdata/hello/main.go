// Command hello resolves a name, so that a cgo build would link the C
// resolver and a CGO_ENABLED=0 one links Go's.
package main

import (
	"fmt"
	"net"
)

func main() {
	addrs, err := net.LookupHost("localhost")
	fmt.Println(len(addrs) > 0, err == nil)
}
