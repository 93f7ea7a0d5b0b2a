using System.Net;
using SecureMesh.Cli.Tui;
using SecureMesh.Core.Identity;
using SecureMesh.Node;
using SecureMesh.Node.Control;
using SecureMesh.Storage;

namespace SecureMesh.Cli.Tests.Tui;

/// <summary>Issue 15: the Peers view says "refusing us" and shows the last handshake's words on the dialling side.</summary>
public sealed class PeersRefusalViewTests
{
    [Fact]
    public void A_peer_refusing_us_is_shown_as_such_with_its_last_words()
    {
        var client = new FakeNodeClient();
        client.Peers.Add(new PeerView(FakeNodeClient.PeerIdOf(7).Text, "carol", PeerViewState.Trusted, false, FakeNodeClient.PeerIdOf(7).Fingerprint,
            "oscar-papa-quebec", ["192.0.2.12:4747"], RefusingUs: true));
        using var h = new TuiHarness(client, width: 140, height: 40);
        h.WaitForScreen("carol");
        var row = h.Screen.Split('\n').Single(l => l.Contains("carol", StringComparison.Ordinal));
        Assert.Contains("trusted, refusing us", row, StringComparison.Ordinal);
        Assert.Contains("oscar-papa-quebec", row, StringComparison.Ordinal);
        var alice = h.Screen.Split('\n').Single(l => l.Contains("alice", StringComparison.Ordinal));
        Assert.DoesNotContain("refusing", alice, StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_node_client_maps_a_real_refusal_and_the_dialling_sides_sas()
    {
        var homes = new List<string>();
        (MeshNode Node, SecureMeshDatabase Db, NodeIdentity Id, string Home) Start()
        {
            var home = Directory.CreateTempSubdirectory("securemesh-tui-refusal-").FullName;
            homes.Add(home);
            var id = NodeIdentity.Generate();
            var db = SecureMeshDatabase.Open(home);
            var node = MeshNode.Start(id, db, new NodeOptions { Home = home, Listen = new IPEndPoint(IPAddress.Loopback, 0) });
            return (node, db, id, home);
        }
        var alice = Start();
        var bob = Start();
        try
        {
            alice.Db.Trust.AddPeer(bob.Id.PeerId, "bob", trusted: true);
            alice.Db.Trust.Block(bob.Id.PeerId);
            bob.Db.Trust.AddPeer(alice.Id.PeerId, "alice", trusted: true);
            await bob.Node.ConnectAsync(alice.Id.PeerId, alice.Node.LocalEndPoint, CancellationToken.None);
            var deadline = DateTime.UtcNow.AddSeconds(10);
            while (!bob.Db.Trust.GetPeer(alice.Id.PeerId)!.RefusingUs)
            {
                Assert.True(DateTime.UtcNow < deadline, "the refusal never arrived");
                await Task.Delay(20);
            }
            while (bob.Node.GetSession(alice.Id.PeerId) is not null)
            {
                Assert.True(DateTime.UtcNow < deadline, "the session never closed");
                await Task.Delay(20);
            }

            var client = ControlNodeClient.ForTest(new NodeControlService(bob.Home, bob.Db, bob.Node), new GroupControlService(bob.Db));
            var view = (await client.ListPeersAsync(CancellationToken.None)).Single(p => p.PeerId == alice.Id.PeerId.Text);
            Assert.True(view.RefusingUs);
            Assert.False(view.Online);
            Assert.Equal(Assert.Single(bob.Node.RecentHandshakes).Sas, view.Sas);
            Assert.Contains("SAS " + view.Sas, PeersPage.TrustQuestion(view), StringComparison.Ordinal);
        }
        finally
        {
            foreach (var n in new[] { alice, bob })
            {
                await n.Node.DisposeAsync();
                n.Db.Dispose();
                n.Id.Dispose();
            }
            foreach (var home in homes)
            {
                Directory.Delete(home, recursive: true);
            }
        }
    }
}
