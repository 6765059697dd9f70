module github.com/sluice-go/sluice

go 1.25

require github.com/reugn/go-streams v0.13.0
