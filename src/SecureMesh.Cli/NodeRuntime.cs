using System.Net;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Logging.Console;
using SecureMesh.Core;
using SecureMesh.Core.Identity;
using SecureMesh.Node;
using SecureMesh.Node.Transfer;
using SecureMesh.Storage;

namespace SecureMesh.Cli;

/// <summary>
/// A node run by a command for as long as it needs one (<c>get</c>, <c>search</c> when no node is running): it holds
/// the node lock, listens on an ephemeral loopback port only (nothing is exposed), dials every trusted peer with a
/// stored address and waits for their protocol sessions.
/// </summary>
internal sealed class NodeRuntime : IAsyncDisposable
{
    private readonly NodeLock _lock;
    private readonly ILoggerFactory _loggerFactory;

    private NodeRuntime(NodeLock nodeLock, NodeIdentity identity, SecureMeshDatabase db, TransferService transfer, MeshNode node, PeerConnector connector, ILoggerFactory loggerFactory)
    {
        _lock = nodeLock;
        Identity = identity;
        Db = db;
        Transfer = transfer;
        Node = node;
        Connector = connector;
        _loggerFactory = loggerFactory;
    }

    public NodeIdentity Identity { get; }

    public SecureMeshDatabase Db { get; }

    public TransferService Transfer { get; }

    public MeshNode Node { get; }

    public PeerConnector Connector { get; }

    public static async Task<NodeRuntime> StartAsync(CliContext ctx, bool passphraseStdin, CancellationToken cancellationToken)
    {
        if (!IdentityStore.Exists(ctx.Home))
        {
            throw new SecureMeshException(SecureMeshErrorKind.Identity, $"no identity in {ctx.Home}: run 'securemesh init' first");
        }
        // Compiles the hashing code on another core while this command loads its identity and connects.
        _ = Task.Run(Core.Content.ContentVerifier.WarmUp, cancellationToken);
        var nodeLock = NodeLock.Acquire(ctx.Home);
        NodeIdentity? identity = null;
        SecureMeshDatabase? db = null;
        var loggerFactory = QuietLoggerFactory(ctx.Verbose);
        try
        {
            identity = IdentityStore.Load(ctx.Home, ctx.PassphraseSource(passphraseStdin));
            db = SecureMeshDatabase.Open(ctx.Home);
            var (transfer, node) = LocalNode.Start(identity, db, ctx.Home, new IPEndPoint(IPAddress.Loopback, 0), loggerFactory);
            var connector = new PeerConnector(node, null, loggerFactory);
            var runtime = new NodeRuntime(nodeLock, identity, db, transfer, node, connector, loggerFactory);
            var sessions = await connector.ConnectAllAsync(TimeSpan.FromSeconds(10), cancellationToken).ConfigureAwait(false);
            await transfer.WaitForPeersAsync(sessions, TimeSpan.FromSeconds(5), cancellationToken).ConfigureAwait(false);
            connector.Start();
            return runtime;
        }
        catch
        {
            db?.Dispose();
            identity?.Dispose();
            nodeLock.Dispose();
            loggerFactory.Dispose();
            throw;
        }
    }

    /// <summary>Logs to stderr (so --json output stays clean), and only with --verbose.</summary>
    internal static ILoggerFactory QuietLoggerFactory(bool verbose) => verbose
        ? LoggerFactory.Create(builder =>
        {
            builder.SetMinimumLevel(LogLevel.Debug);
            SafeConsoleFormatter.AddTo(builder);
            builder.Services.Configure<ConsoleLoggerOptions>(o => o.LogToStandardErrorThreshold = LogLevel.Trace);
            builder.AddFilter("Microsoft", LogLevel.Warning);
        })
        : NullLoggerFactory.Instance;

    public async ValueTask DisposeAsync()
    {
        await Connector.DisposeAsync().ConfigureAwait(false);
        await Transfer.DisposeAsync().ConfigureAwait(false);
        await Node.DisposeAsync().ConfigureAwait(false);
        Db.Dispose();
        Identity.Dispose();
        _lock.Dispose();
        _loggerFactory.Dispose();
    }
}
