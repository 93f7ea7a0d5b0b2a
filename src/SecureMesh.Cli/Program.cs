// The terminal UI talks to the node through its control socket: the running node, or one it hosts.
SecureMesh.Cli.Tui.TuiHost.ClientFactory = SecureMesh.Cli.Tui.ControlNodeClient.Create;
return SecureMesh.Cli.CliApp.Run(args);
