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
/// the node lock, listens on an ephemeral loopback port only (nothing is exposed); the host dials every trusted peer
/// with a stored address and waits for their protocol sessions before it is handed over
/// (<see cref="MeshHostOptions.ConnectPeersFirst"/>).
/// </summary>
internal sealed class NodeRuntime : IAsyncDisposable
{
    private readonly NodeLock _lock;
    private readonly ILoggerFactory _loggerFactory;

    private readonly MeshHost _host;

    private NodeRuntime(NodeLock nodeLock, NodeIdentity identity, SecureMeshDatabase db, MeshHost host, ILoggerFactory loggerFactory)
    {
        _lock = nodeLock;
        Identity = identity;
        Db = db;
        _host = host;
        _loggerFactory = loggerFactory;
    }

    public NodeIdentity Identity { get; }

    public SecureMeshDatabase Db { get; }

    public TransferService Transfer => _host.Transfer;

    public MeshNode Node => _host.Node;

    public PeerConnector Connector => _host.Connector;

    public MeshHost Host => _host;

    public Node.Backup.BackupService Backup => _host.Backup;

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
        MeshHost? host = null;
        var loggerFactory = QuietLoggerFactory(ctx.Verbose);
        // The database opens on another core while the identity is read (and unlocked, when it is protected).
        var opening = Task.Run(() => SecureMeshDatabase.Open(ctx.Home), CancellationToken.None);
        try
        {
            identity = IdentityStore.Load(ctx.Home, ctx.PassphraseSource(passphraseStdin));
            db = await opening.ConfigureAwait(false);
            host = await MeshHost.StartAsync(identity, db, new MeshHostOptions
            {
                Home = ctx.Home,
                Listen = new IPEndPoint(IPAddress.Loopback, 0),
                LoggerFactory = loggerFactory,
                ConnectPeersFirst = true,
            }, cancellationToken).ConfigureAwait(false);
            return new NodeRuntime(nodeLock, identity, db, host, loggerFactory);
        }
        catch
        {
            if (host is not null)
            {
                await host.DisposeAsync().ConfigureAwait(false);
            }
            if (db is null)
            {
                await CloseUnusedAsync(opening).ConfigureAwait(false);
            }
            db?.Dispose();
            identity?.Dispose();
            nodeLock.Dispose();
            loggerFactory.Dispose();
            throw;
        }
    }

    /// <summary>The start failed before the database was taken: it is closed once open (a failure to open is not the one to report).</summary>
    private static async Task CloseUnusedAsync(Task<SecureMeshDatabase> opening)
    {
        await Task.WhenAny(opening).ConfigureAwait(false);
        if (opening.IsCompletedSuccessfully)
        {
            (await opening.ConfigureAwait(false)).Dispose();
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
        await _host.DisposeAsync().ConfigureAwait(false);
        // Every commit is already durable in the WAL (synchronous=FULL); the checkpoint a close would run is left to the
        // next open or SQLite's own, so a one-off command does not end with two more fsyncs.
        Db.CloseWithoutCheckpoint();
        Identity.Dispose();
        _lock.Dispose();
        _loggerFactory.Dispose();
    }
}
