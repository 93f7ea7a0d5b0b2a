using System.Net;
using SecureMesh.Core;
using SecureMesh.Core.Identity;
using SecureMesh.Core.Wire;
using SecureMesh.Node;
using SecureMesh.Node.Network;
using SecureMesh.Node.Transfer;
using SecureMesh.Storage;

namespace SecureMesh.IntegrationTests;

public sealed class HostileChannelTests : IDisposable
{
    private readonly string _home = Directory.CreateTempSubdirectory("securemesh-hostile-").FullName;

    public void Dispose()
    {
        try
        {
            Directory.Delete(_home, recursive: true);
        }
        catch (IOException)
        {
        }
    }

    [Fact]
    public async Task A_message_length_over_the_cap_closes_the_session_before_allocating_and_the_node_serves_on()
    {
        var home = _home;
        using var identity = NodeIdentity.Generate();
        using var db = SecureMeshDatabase.Open(home);
        await using var transfer = new TransferService(db, identity, home);
        await using var node = MeshNode.Start(identity, db, new NodeOptions
        {
            Home = home,
            Listen = new IPEndPoint(IPAddress.Loopback, 0),
            SessionHandler = transfer.HandleSessionAsync,
            Protocols = transfer.StreamProtocols,
        });
        using var attacker = NodeIdentity.Generate();
        db.Trust.AddPeer(attacker.PeerId, null, null, trusted: true);
        var timeout = TimeSpan.FromSeconds(3);

        await using (var hostile = await PeerLink.DialAsync(attacker, node.LocalEndPoint, identity.PeerId, timeout, CancellationToken.None))
        {
            await hostile.SendAsync(WireCodec.Encode(new Hello(0, WireLimits.ProtocolVersion, [], WireLimits.DefaultMaxMessageSize)), CancellationToken.None);
            // A message announcing 2 GiB (its varint length): the node must drop the connection without allocating it.
            await hostile.SendRawAsync(new byte[] { 0x80, 0x80, 0x80, 0x80, 0x08 }, CancellationToken.None);
            using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(5));
            await Assert.ThrowsAsync<SecureMeshException>(async () =>
            {
                while (true)
                {
                    await hostile.ReceiveAsync(cts.Token);
                }
            });
            Assert.False(cts.IsCancellationRequested, "the node should close the connection, not leave it hanging");
        }

        // The node keeps one session per peer: dial again only once the dropped one is gone, or the new connection
        // can lose to the old session still being torn down (seen under load).
        var gone = DateTime.UtcNow + TimeSpan.FromSeconds(5);
        while (node.GetSession(attacker.PeerId) is not null)
        {
            Assert.True(DateTime.UtcNow < gone, "the dropped session should be removed");
            await Task.Delay(20);
        }
        await using var good = await PeerLink.DialAsync(attacker, node.LocalEndPoint, identity.PeerId, timeout, CancellationToken.None);
        await good.SendAsync(WireCodec.Encode(new Hello(0, WireLimits.ProtocolVersion, [], WireLimits.DefaultMaxMessageSize)), CancellationToken.None);
        await good.SendAsync(WireCodec.Encode(new SearchRequest(1, "x", 1)), CancellationToken.None);
        using var wait = new CancellationTokenSource(TimeSpan.FromSeconds(5));
        Assert.IsType<Hello>(WireCodec.Decode(await good.ReceiveAsync(wait.Token)));
        Assert.IsType<SearchResponse>(WireCodec.Decode(await good.ReceiveAsync(wait.Token)));
    }
}
