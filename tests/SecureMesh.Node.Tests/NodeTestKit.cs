using System.Net;
using SecureMesh.Core;
using SecureMesh.Core.Identity;
using SecureMesh.Node.Network;
using SecureMesh.Storage;

namespace SecureMesh.Node.Tests;

/// <summary>A real node on 127.0.0.1 with its own data directory and SQLite file.</summary>
internal sealed class TestNode : IAsyncDisposable
{
    private TestNode(string home, NodeIdentity identity, SecureMeshDatabase db, MeshNode node)
    {
        Home = home;
        Identity = identity;
        Db = db;
        Node = node;
    }

    public string Home { get; }

    public NodeIdentity Identity { get; }

    public SecureMeshDatabase Db { get; }

    public MeshNode Node { get; }

    public IPEndPoint EndPoint => Node.LocalEndPoint;

    public static TestNode Start(int? handshakeBurst = null, Func<PeerSession, CancellationToken, Task>? handler = null, TimeSpan? handshakeRefill = null,
        TimeProvider? time = null, Microsoft.Extensions.Logging.ILoggerFactory? loggers = null, IProtocolPolicy? policy = null,
        IReadOnlyList<StreamProtocol>? protocols = null, SecureMesh.Node.Relay.RelayOptions? relay = null, ISideConnections? side = null)
    {
        var home = Directory.CreateTempSubdirectory("securemesh-node-").FullName;
        var identity = NodeIdentity.Generate();
        var db = SecureMeshDatabase.Open(home, time);
        var node = MeshNode.Start(identity, db, new NodeOptions
        {
            Time = time ?? TimeProvider.System,
            LoggerFactory = loggers ?? Microsoft.Extensions.Logging.Abstractions.NullLoggerFactory.Instance,
            Home = home,
            Listen = new IPEndPoint(IPAddress.Loopback, 0),
            HandshakeBurst = handshakeBurst ?? 20,
            HandshakeRefill = handshakeRefill ?? TimeSpan.FromMilliseconds(500),
            HandshakeTimeout = TimeSpan.FromSeconds(3),
            PollInterval = TimeSpan.FromMilliseconds(100),
            SessionHandler = handler,
            Policy = policy,
            Protocols = protocols ?? [],
            Relay = relay ?? new SecureMesh.Node.Relay.RelayOptions(),
            SideConnections = side,
        });
        return new TestNode(home, identity, db, node);
    }

    /// <summary>A second handle on the same database file, as the CLI in another process would have.</summary>
    public SecureMeshDatabase OpenOtherHandle() => SecureMeshDatabase.Open(Home);

    public async ValueTask DisposeAsync()
    {
        await Node.DisposeAsync();
        Db.Dispose();
        Identity.Dispose();
        try
        {
            Directory.Delete(Home, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}

internal static class Wait
{
    public static async Task UntilAsync(Func<bool> condition, TimeSpan timeout, string what)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (!condition())
        {
            if (DateTime.UtcNow > deadline)
            {
                Assert.Fail($"timed out after {timeout.TotalSeconds:0.#}s waiting for {what}");
            }
            await Task.Delay(20);
        }
    }

    /// <summary>True when the remote side closes the connection within <paramref name="timeout"/>.</summary>
    public static Task<bool> ClosedByRemoteAsync(PeerLink connection, TimeSpan timeout) => connection.ClosedByRemoteAsync(timeout);

    public static Task<PeerLink> DialAsync(NodeIdentity client, TestNode server) =>
        PeerLink.DialAsync(client, server.EndPoint, server.Identity.PeerId, TimeSpan.FromSeconds(3), CancellationToken.None);
}
