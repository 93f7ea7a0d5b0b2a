using SecureMesh.Core;

namespace SecureMesh.Cli.Tui;

/// <summary>
/// Where <c>securemesh tui</c> gets its node client. The node integration sets <see cref="ClientFactory"/> at start-up
/// (for example in <c>Program</c>); until then the command fails with a clear error instead of showing made-up data.
/// </summary>
internal static class TuiHost
{
    /// <summary>Creates the client for a command invocation (attach to the running node, or host one). The UI disposes it when it implements <see cref="IAsyncDisposable"/> or <see cref="IDisposable"/>.</summary>
    public static Func<CliContext, INodeClient>? ClientFactory { get; set; }

    internal const string NotAvailable = "the terminal UI needs the node service, which this build does not include yet";

    internal static INodeClient CreateClient(CliContext context) =>
        (ClientFactory ?? throw new SecureMeshException(SecureMeshErrorKind.NotFound, NotAvailable))(context);
}
