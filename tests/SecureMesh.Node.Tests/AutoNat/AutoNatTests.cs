using System.Net;
using System.Net.Sockets;
using SecureMesh.Core.Addressing;
using SecureMesh.Core.Identity;
using SecureMesh.Core.Libp2p.AutoNat;
using SecureMesh.Node.AutoNat;
using SecureMesh.Node.Network;
using SecureMesh.Storage;

namespace SecureMesh.Node.Tests.AutoNat;

/// <summary>
/// Issue 17, item 3: AutoNAT v2 between real hosts on loopback. A trusted peer dials our address back and we believe it
/// only when our nonce arrives; the dial back never replaces the session; a third party's address is never dialled (or,
/// when other IPs are allowed, only after the dial-data payment); strangers get nothing; garbage resets the stream.
/// </summary>
public sealed class AutoNatTests : IAsyncLifetime
{
    private readonly List<(MeshHost Host, SecureMeshDatabase Db, NodeIdentity Id, string Home)> _hosts = [];

    public Task InitializeAsync() => Task.CompletedTask;

    private async Task<(MeshHost Host, SecureMeshDatabase Db, NodeIdentity Id)> StartAsync(AutoNatOptions? options = null, string address = "127.0.0.1")
    {
        var home = Directory.CreateTempSubdirectory("securemesh-autonat-").FullName;
        var id = NodeIdentity.Generate();
        var db = SecureMeshDatabase.Open(home);
        var host = await MeshHost.StartAsync(id, db, new MeshHostOptions
        {
            Home = home,
            Listen = new IPEndPoint(IPAddress.Parse(address), 0),
            AutoNat = options ?? new AutoNatOptions { AllowPrivateAddresses = true },
        }, CancellationToken.None);
        _hosts.Add((host, db, id, home));
        return (host, db, id);
    }

    private static async Task<PeerSession> ConnectAsync((MeshHost Host, SecureMeshDatabase Db, NodeIdentity Id) a, (MeshHost Host, SecureMeshDatabase Db, NodeIdentity Id) b)
    {
        a.Db.Trust.AddPeer(b.Id.PeerId, "b", trusted: true);
        b.Db.Trust.AddPeer(a.Id.PeerId, "a", trusted: true);
        var session = await a.Host.Node.ConnectAsync(b.Id.PeerId, b.Host.Node.LocalEndPoint, CancellationToken.None);
        await Wait.UntilAsync(() => session.Identified is not null, TimeSpan.FromSeconds(10), "identify");
        return session;
    }

    [Fact]
    public async Task A_trusted_peer_dials_us_back_and_the_session_survives()
    {
        var a = await StartAsync();
        var b = await StartAsync();
        var session = await ConnectAsync(a, b);
        Assert.Contains(AutoNatMessages.DialRequestProtocol, session.Identified!.Protocols);

        var state = await a.Host.AutoNat.Client.CheckAsync(session, a.Host.Node.LocalEndPoint, CancellationToken.None);
        Assert.Equal(Reachability.Reachable, state);
        // The dial back was a side connection: the one session with B is the same, still open.
        Assert.Same(session, a.Host.Node.GetSession(b.Id.PeerId));
        Assert.False(session.Closing.IsCancellationRequested);
        Assert.Same(b.Host.Node.Sessions.Single(), b.Host.Node.GetSession(a.Id.PeerId));

        // A round of the service records it for status.
        await a.Host.AutoNat.CheckAllAsync(a.Host.Node, CancellationToken.None);
        Assert.Equal(Reachability.Reachable, a.Host.Node.Reach.StateOf(a.Host.Node.LocalEndPoint));
        var status = await new Control.NodeControlService(Path.GetDirectoryName(a.Db.Path)!, a.Db, a.Host.Node).GetStatusAsync(CancellationToken.None);
        var entry = Assert.Single(status.Reachability!, r => r.Address == MultiaddrBytes.Text(a.Host.Node.LocalEndPoint));
        Assert.Equal("reachable", entry.State);
        Assert.Equal("listen", entry.Source);
    }

    [Fact]
    public async Task A_closed_port_is_unreachable()
    {
        var a = await StartAsync();
        var b = await StartAsync();
        var session = await ConnectAsync(a, b);
        var closed = new TcpListener(IPAddress.Loopback, 0);
        closed.Start();
        var port = ((IPEndPoint)closed.LocalEndpoint).Port;
        closed.Stop();
        Assert.Equal(Reachability.Unreachable, await a.Host.AutoNat.Client.CheckAsync(session, new IPEndPoint(IPAddress.Loopback, port), CancellationToken.None));
    }

    [Fact]
    public async Task A_dial_back_to_a_third_party_address_is_refused_and_nothing_is_dialled()
    {
        var b = await StartAsync();
        using var client = NodeIdentity.Generate();
        b.Db.Trust.AddPeer(client.PeerId, "client", trusted: true);
        using var victim = new TcpListener(IPAddress.Parse("127.0.0.2"), 0);
        victim.Start();
        var victimAt = (IPEndPoint)victim.LocalEndpoint;

        await using var link = await PeerLink.DialAsync(client, b.Host.Node.LocalEndPoint, b.Id.PeerId, TimeSpan.FromSeconds(5), CancellationToken.None);
        await using var stream = await link.OpenStreamAsync(AutoNatMessages.DialRequestProtocol, CancellationToken.None);
        await AutoNatMessages.WriteAsync(stream, new DialRequest([Multiaddr.FromEndPoint(victimAt).ToBytes()], 42), CancellationToken.None);
        var answer = Assert.IsType<DialResponse>(await AutoNatMessages.ReadAsync(stream, CancellationToken.None));
        Assert.Equal(ResponseStatus.DialRefused, answer.Status);
        await Task.Delay(300);
        Assert.False(victim.Pending(), "the server dialled a third party");
    }

    [Fact]
    public async Task With_other_ips_allowed_the_amplification_guard_asks_for_dial_data_before_dialling()
    {
        var b = await StartAsync(new AutoNatOptions { AllowPrivateAddresses = true, AllowOtherIp = true, DialDataBytes = 30_000 });
        using var client = NodeIdentity.Generate();
        b.Db.Trust.AddPeer(client.PeerId, "client", trusted: true);
        using var victim = new TcpListener(IPAddress.Parse("127.0.0.2"), 0);
        victim.Start();
        var victimAt = (IPEndPoint)victim.LocalEndpoint;

        await using var link = await PeerLink.DialAsync(client, b.Host.Node.LocalEndPoint, b.Id.PeerId, TimeSpan.FromSeconds(5), CancellationToken.None);
        await using var stream = await link.OpenStreamAsync(AutoNatMessages.DialRequestProtocol, CancellationToken.None);
        await AutoNatMessages.WriteAsync(stream, new DialRequest([Multiaddr.FromEndPoint(victimAt).ToBytes()], 42), CancellationToken.None);
        var ask = Assert.IsType<DialDataRequest>(await AutoNatMessages.ReadAsync(stream, CancellationToken.None));
        Assert.Equal(0u, ask.AddrIdx);
        Assert.InRange(ask.NumBytes, 30_000ul, 100_000ul);
        // Not paid yet: nothing dialled.
        for (var paid = 0; paid < 29_000; paid += 4096)
        {
            await AutoNatMessages.WriteAsync(stream, new DialDataResponse(Math.Min(4096, 29_000 - paid)), CancellationToken.None);
        }
        await Task.Delay(300);
        Assert.False(victim.Pending(), "dialled before the payment was complete");
        await AutoNatMessages.WriteAsync(stream, new DialDataResponse(4096), CancellationToken.None);
        using var accepted = await victim.AcceptTcpClientAsync().WaitAsync(TimeSpan.FromSeconds(10));
        accepted.Close();
        var answer = Assert.IsType<DialResponse>(await AutoNatMessages.ReadAsync(stream, CancellationToken.None));
        Assert.Equal(ResponseStatus.Ok, answer.Status);
        Assert.Equal(DialStatus.DialError, answer.DialStatus);
    }

    [Fact]
    public async Task A_stranger_gets_no_autonat_stream()
    {
        var b = await StartAsync();
        using var stranger = NodeIdentity.Generate();
        await using var link = await PeerLink.DialAsync(stranger, b.Host.Node.LocalEndPoint, b.Id.PeerId, TimeSpan.FromSeconds(5), CancellationToken.None);
        await Assert.ThrowsAnyAsync<Exception>(async () =>
        {
            await using var stream = await link.OpenStreamAsync(AutoNatMessages.DialRequestProtocol, CancellationToken.None);
            await AutoNatMessages.WriteAsync(stream, new DialRequest([Multiaddr.FromEndPoint(new IPEndPoint(IPAddress.Loopback, 9)).ToBytes()], 1), CancellationToken.None);
            _ = await AutoNatMessages.ReadAsync(stream, CancellationToken.None) ?? throw new IOException("nothing");
        });
        Assert.Empty(b.Host.Node.Sessions);
    }

    [Theory]
    [InlineData(new byte[] { 0xff, 0xff, 0xff, 0xff, 0x0f })]
    [InlineData(new byte[] { 0x05, 0xde, 0xad, 0xbe, 0xef, 0x00 })]
    [InlineData(new byte[] { 0x02, 0x12, 0x00 })]
    public async Task Garbage_or_an_oversized_length_resets_the_stream_and_the_session_stays(byte[] garbage)
    {
        var b = await StartAsync();
        using var client = NodeIdentity.Generate();
        b.Db.Trust.AddPeer(client.PeerId, "client", trusted: true);
        await using var link = await PeerLink.DialAsync(client, b.Host.Node.LocalEndPoint, b.Id.PeerId, TimeSpan.FromSeconds(5), CancellationToken.None);
        await using (var stream = await link.OpenStreamAsync(AutoNatMessages.DialRequestProtocol, CancellationToken.None))
        {
            await stream.WriteAsync(garbage);
            await stream.FlushAsync();
            await Assert.ThrowsAnyAsync<Exception>(async () =>
                _ = await AutoNatMessages.ReadAsync(stream, CancellationToken.None) ?? throw new IOException("ended without an answer"));
        }
        Assert.NotNull(b.Host.Node.GetSession(client.PeerId));
        // The next request on a fresh stream is still served.
        await using var again = await link.OpenStreamAsync(AutoNatMessages.DialRequestProtocol, CancellationToken.None);
        await AutoNatMessages.WriteAsync(again, new DialRequest([], 1), CancellationToken.None);
        Assert.Equal(ResponseStatus.DialRefused, Assert.IsType<DialResponse>(await AutoNatMessages.ReadAsync(again, CancellationToken.None)).Status);
    }

    [Fact]
    public async Task Requests_over_the_rate_limit_are_rejected()
    {
        var b = await StartAsync(new AutoNatOptions { AllowPrivateAddresses = true, RequestsPerPeer = 2 });
        using var client = NodeIdentity.Generate();
        b.Db.Trust.AddPeer(client.PeerId, "client", trusted: true);
        await using var link = await PeerLink.DialAsync(client, b.Host.Node.LocalEndPoint, b.Id.PeerId, TimeSpan.FromSeconds(5), CancellationToken.None);
        var statuses = new List<ResponseStatus>();
        for (var i = 0; i < 3; i++)
        {
            await using var stream = await link.OpenStreamAsync(AutoNatMessages.DialRequestProtocol, CancellationToken.None);
            await AutoNatMessages.WriteAsync(stream, new DialRequest([], (ulong)i), CancellationToken.None);
            statuses.Add(Assert.IsType<DialResponse>(await AutoNatMessages.ReadAsync(stream, CancellationToken.None)).Status);
        }
        Assert.Equal([ResponseStatus.DialRefused, ResponseStatus.DialRefused, ResponseStatus.RequestRejected], statuses);
    }

    [Fact]
    public async Task A_server_claiming_success_without_a_dial_back_is_not_believed()
    {
        var a = await StartAsync();
        var liar = TestNode.Start();
        try
        {
            a.Db.Trust.AddPeer(liar.Identity.PeerId, "liar", trusted: true);
            liar.Db.Trust.AddPeer(a.Id.PeerId, "a", trusted: true);
            await using var link = await PeerLink.DialAsync(liar.Identity, a.Host.Node.LocalEndPoint, a.Id.PeerId, TimeSpan.FromSeconds(5), CancellationToken.None);
            await Wait.UntilAsync(() => a.Host.Node.GetSession(liar.Identity.PeerId) is not null, TimeSpan.FromSeconds(5), "the session");
            var session = a.Host.Node.GetSession(liar.Identity.PeerId)!;
            var ask = a.Host.AutoNat.Client.CheckAsync(session, a.Host.Node.LocalEndPoint, CancellationToken.None);
            var stream = await AcceptAutoNatStreamAsync(link);
            Assert.IsType<DialRequest>(await AutoNatMessages.ReadAsync(stream, CancellationToken.None));
            await AutoNatMessages.WriteAsync(stream, new DialResponse(ResponseStatus.Ok, 0, DialStatus.Ok), CancellationToken.None);
            Assert.Null(await ask);
        }
        finally
        {
            await liar.DisposeAsync();
        }
    }

    /// <summary>The node's AutoNAT stream; its identify stream (opened first) is turned down on the way.</summary>
    private static async Task<Stream> AcceptAutoNatStreamAsync(PeerLink link)
    {
        for (var i = 0; ; i++)
        {
            try
            {
                using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
                return (await link.AcceptStreamAsync([AutoNatMessages.DialRequestProtocol], timeout.Token)).Stream;
            }
            catch (Exception) when (i < 5)
            {
            }
        }
    }

    public async Task DisposeAsync()
    {
        foreach (var (host, db, id, home) in _hosts)
        {
            await host.DisposeAsync();
            db.Dispose();
            id.Dispose();
            try
            {
                Directory.Delete(home, recursive: true);
            }
            catch (IOException)
            {
            }
        }
    }
}
