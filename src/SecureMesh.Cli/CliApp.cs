namespace SecureMesh.Cli;

internal static class CliApp
{
    public static int Run(string[] args) => args.Length == 0 ? 2 : 0;
}
