package main

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/tetragon-lite/tetragon/pkg/api"
	"github.com/tetragon-lite/tetragon/pkg/version"
)

func newVersionCmd(root *rootOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the client's and the agent's versions",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "Client version: %s\n", version.Version)
			v, err := serverVersion(cmd.Context(), root)
			if err != nil {
				return err
			}
			fmt.Fprintf(out, "Server version: %s\n", v)
			return nil
		},
	}
}

func serverVersion(ctx context.Context, root *rootOptions) (string, error) {
	timeout, err := root.callTimeout()
	if err != nil {
		return "", err
	}
	conn, err := root.dial(ctx)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	resp, err := api.NewFineGuidanceSensorsClient(conn).GetVersion(ctx, &api.GetVersionRequest{})
	if err != nil {
		return "", rpcError("getting the agent's version", err)
	}
	return resp.GetVersion(), nil
}
