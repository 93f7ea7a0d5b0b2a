return SecureMesh.Cli.CliApp.Run(args);
