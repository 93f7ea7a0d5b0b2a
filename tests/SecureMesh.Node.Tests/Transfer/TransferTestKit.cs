using System.Net;
using SecureMesh.Core.Content;
using SecureMesh.Core.Identity;
using SecureMesh.Node.Transfer;
using SecureMesh.Storage;

namespace SecureMesh.Node.Tests.Transfer;

/// <summary>A real node on 127.0.0.1 with its transfer engine, its own data directory and SQLite file.</summary>
internal sealed class TransferNode : IAsyncDisposable
{
    public const int ChunkSize = 16 * 1024;

    private TransferNode(string home, NodeIdentity identity, SecureMeshDatabase db, TransferService transfer, MeshNode node)
    {
        Home = home;
        Identity = identity;
        Db = db;
        Transfer = transfer;
        Node = node;
    }

    public string Home { get; }

    public NodeIdentity Identity { get; }

    public PeerId PeerId => Identity.PeerId;

    public SecureMeshDatabase Db { get; }

    public TransferService Transfer { get; }

    public MeshNode Node { get; }

    public string Downloads => Path.Combine(Home, "downloads");

    public static TransferNode Start(TransferOptions? options = null, string? home = null, NodeIdentity? identity = null, int? handshakeBurst = null, TimeSpan? handshakeRefill = null,
        TimeProvider? nodeTime = null)
    {
        home ??= Directory.CreateTempSubdirectory("securemesh-xfer-").FullName;
        identity ??= NodeIdentity.Generate();
        var db = SecureMeshDatabase.Open(home);
        db.Config.Set(NodeSettings.ChunkSize, ChunkSize.ToString(System.Globalization.CultureInfo.InvariantCulture));
        db.Config.Set(NodeSettings.DownloadDir, Path.Combine(home, "downloads"));
        var transfer = new TransferService(db, identity, home, options ?? Fast());
        var node = MeshNode.Start(identity, db, new NodeOptions
        {
            Home = home,
            Listen = new IPEndPoint(IPAddress.Loopback, 0),
            Time = nodeTime ?? TimeProvider.System,
            HandshakeBurst = handshakeBurst ?? 20,
            HandshakeRefill = handshakeRefill ?? TimeSpan.FromMilliseconds(500),
            HandshakeTimeout = TimeSpan.FromSeconds(3),
            PollInterval = TimeSpan.FromMilliseconds(100),
            SessionHandler = transfer.HandleSessionAsync,
            Protocols = transfer.StreamProtocols,
        });
        return new TransferNode(home, identity, db, transfer, node);
    }

    public static TransferOptions Fast(Action<TransferOptionsBuilder>? configure = null)
    {
        var b = new TransferOptionsBuilder();
        configure?.Invoke(b);
        return b.Build();
    }

    /// <summary>Makes both nodes trust each other (with addresses) and connects this one to <paramref name="other"/>.</summary>
    public async Task ConnectAsync(TransferNode other)
    {
        Trust(other);
        other.Trust(this);
        await Node.ConnectAsync(other.PeerId, other.Node.LocalEndPoint, CancellationToken.None);
        await Wait.UntilAsync(() => Transfer.OpenSessions().Any(s => s.PeerId.Equals(other.PeerId))
            && other.Transfer.OpenSessions().Any(s => s.PeerId.Equals(PeerId)), TimeSpan.FromSeconds(10), "protocol sessions");
    }

    public void Trust(TransferNode other)
    {
        if (Db.Trust.GetPeer(other.PeerId) is null)
        {
            Db.Trust.AddPeer(other.PeerId, null, [$"127.0.0.1:{other.Node.LocalEndPoint.Port}"], trusted: true);
        }
    }

    public string WriteFile(string name, int length, int seed = 1)
    {
        var dir = Path.Combine(Home, "shared");
        Directory.CreateDirectory(dir);
        var path = Path.Combine(dir, name);
        var data = new byte[length];
        new Random(seed).NextBytes(data);
        File.WriteAllBytes(path, data);
        return path;
    }

    public async Task<ContentId> ShareAsync(string path)
    {
        await Transfer.Shares.AddAsync(path, null, CancellationToken.None);
        var entry = Db.Catalog.Get(Path.GetFullPath(path)) ?? throw new InvalidOperationException("not indexed");
        return ContentId.Parse(entry.ContentId);
    }

    public async ValueTask DisposeAsync()
    {
        await StopAsync();
        try
        {
            Directory.Delete(Home, recursive: true);
        }
        catch (IOException)
        {
        }
        catch (UnauthorizedAccessException)
        {
        }
    }

    /// <summary>Stops the node but keeps its data directory (for restarts).</summary>
    public async Task StopAsync()
    {
        if (_stopped)
        {
            return;
        }
        _stopped = true;
        await Transfer.DisposeAsync();
        await Node.DisposeAsync();
        Db.Dispose();
    }

    private bool _stopped;
}

internal sealed class TransferOptionsBuilder
{
    public int Depth { get; set; } = 4;
    public int LanesPerRequest { get; set; } = 2;
    public int BanAfter { get; set; } = 3;
    public long? UploadLimit { get; set; }
    public TimeSpan ChunkTimeout { get; set; } = TimeSpan.FromSeconds(5);
    public ChunkTamper? Tamper { get; set; }
    public Action<string, string, long>? Served { get; set; }
    public Action<long>? Verified { get; set; }
    public Action<long>? Rehashed { get; set; }
    public int MaxConcurrentServes { get; set; } = 16;
    public TimeSpan ServedFileIdle { get; set; } = TimeSpan.FromSeconds(5);
    public TimeSpan PeerWait { get; set; } = TimeSpan.FromSeconds(10);
    public TimeSpan AccessPoll { get; set; } = TimeSpan.FromMilliseconds(250);

    public TransferOptions Build() => new()
    {
        PipelineDepth = Depth,
        LanesPerRequest = LanesPerRequest,
        BanAfterFailures = BanAfter,
        UploadLimit = UploadLimit,
        ChunkTimeout = ChunkTimeout,
        RequestTimeout = TimeSpan.FromSeconds(5),
        FlushInterval = TimeSpan.FromMilliseconds(50),
        JoinInterval = TimeSpan.FromMilliseconds(100),
        TamperOutgoingChunk = Tamper,
        ChunkServed = Served,
        ChunkVerified = Verified,
        ChunkRehashed = Rehashed,
        MaxConcurrentServes = MaxConcurrentServes,
        ServedFileIdle = ServedFileIdle,
        PeerWait = PeerWait,
        AccessPollInterval = AccessPoll,
    };
}
