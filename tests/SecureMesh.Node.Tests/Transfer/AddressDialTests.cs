using System.Net;
using System.Net.Sockets;
using SecureMesh.Core;
using SecureMesh.Core.Identity;
using SecureMesh.Node.Transfer;

namespace SecureMesh.Node.Tests.Transfer;

/// <summary>Issue 15: peers are reached at host names and multiaddrs, resolved when dialled, every address tried in turn.</summary>
public sealed class AddressDialTests
{
    public static TheoryData<string> Forms => new()
    {
        "localhost:PORT",
        "/dns4/localhost/tcp/PORT",
        "/dns/localhost/tcp/PORT",
        "/ip4/127.0.0.1/tcp/PORT",
        "/ip4/127.0.0.1/tcp/PORT/p2p/PEER",
    };

    [Theory]
    [MemberData(nameof(Forms))]
    public async Task A_stored_name_or_multiaddr_reaches_a_real_node_on_loopback(string form)
    {
        await using var a = TransferNode.Start();
        await using var b = TransferNode.Start();
        var address = form.Replace("PORT", a.Node.LocalEndPoint.Port.ToString(System.Globalization.CultureInfo.InvariantCulture), StringComparison.Ordinal)
            .Replace("PEER", a.PeerId.Text, StringComparison.Ordinal);
        a.Trust(b);
        b.Db.Trust.AddPeer(a.PeerId, "a", [address], trusted: true);
        Assert.Equal(address, Assert.Single(b.Db.Trust.GetPeer(a.PeerId)!.Addresses).Address);

        // The connector dials what is stored, resolving the name now.
        await using var connector = new PeerConnector(b.Node);
        Assert.Equal(1, await connector.ConnectAllAsync(TimeSpan.FromSeconds(10), CancellationToken.None));
        var session = b.Node.GetSession(a.PeerId);
        Assert.NotNull(session);
        Assert.Equal(IPAddress.Loopback, session.RemoteEndPoint!.Address);
        Assert.Equal(a.Node.LocalEndPoint.Port, session.RemoteEndPoint.Port);
        await Wait.UntilAsync(() => a.Node.GetSession(b.PeerId) is not null, TimeSpan.FromSeconds(10), "the other side's session");
    }

    [Fact]
    public async Task A_p2p_part_naming_another_peer_is_refused_without_dialling()
    {
        await using var a = TransferNode.Start();
        await using var b = TransferNode.Start();
        using var other = NodeIdentity.Generate();
        a.Trust(b);
        b.Trust(a);
        var accepted = 0;
        a.Node.SessionOpened += _ => Interlocked.Increment(ref accepted);
        var e = await Assert.ThrowsAsync<SecureMeshException>(() =>
            b.Node.ConnectAsync(a.PeerId, $"/ip4/127.0.0.1/tcp/{a.Node.LocalEndPoint.Port}/p2p/{other.PeerId}", CancellationToken.None));
        Assert.Equal(SecureMeshErrorKind.InvalidInput, e.Kind);
        Assert.Contains($"names peer {other.PeerId}", e.Message, StringComparison.Ordinal);
        Assert.Null(b.Node.GetSession(a.PeerId));
        Assert.Equal(0, accepted);
        Assert.Throws<SecureMeshException>(() => b.Db.Trust.AddAddress(a.PeerId, $"/ip4/127.0.0.1/tcp/1/p2p/{other.PeerId}"));
    }

    [Fact]
    public async Task Every_resolved_address_is_tried_in_turn_until_one_answers()
    {
        await using var a = TransferNode.Start();
        await using var b = TransferNode.Start();
        a.Trust(b);
        b.Trust(a);
        // A port nobody listens on: take one and let it go.
        using var probe = new TcpListener(IPAddress.Loopback, 0);
        probe.Start();
        var dead = ((IPEndPoint)probe.LocalEndpoint).Port;
        probe.Stop();
        var asked = new List<string>();
        b.Node.ResolveForTest = (target, _) =>
        {
            asked.Add(target.Host);
            return Task.FromResult<IReadOnlyList<IPEndPoint>>([new IPEndPoint(IPAddress.Loopback, dead), new IPEndPoint(IPAddress.Loopback, a.Node.LocalEndPoint.Port)]);
        };
        var session = await b.Node.ConnectAsync(a.PeerId, $"nas.example:{a.Node.LocalEndPoint.Port}", CancellationToken.None);
        Assert.Equal(a.Node.LocalEndPoint.Port, session.RemoteEndPoint!.Port);
        Assert.Equal(["nas.example"], asked);

        // When none answers, the error names each address tried.
        await session.Connection.DisposeAsync();
        await Wait.UntilAsync(() => b.Node.GetSession(a.PeerId) is null, TimeSpan.FromSeconds(10), "the session to end");
        b.Node.ResolveForTest = (_, _) => Task.FromResult<IReadOnlyList<IPEndPoint>>([new IPEndPoint(IPAddress.Loopback, dead), new IPEndPoint(IPAddress.Loopback, dead)]);
        var e = await Assert.ThrowsAsync<SecureMeshException>(() => b.Node.ConnectAsync(a.PeerId, $"nas.example:{dead}", CancellationToken.None));
        Assert.Equal(SecureMeshErrorKind.Network, e.Kind);
        Assert.Contains("at any of its 2 addresses", e.Message, StringComparison.Ordinal);
    }
}
