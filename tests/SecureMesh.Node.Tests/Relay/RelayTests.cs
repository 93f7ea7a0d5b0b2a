using SecureMesh.Core;
using SecureMesh.Core.Identity;
using SecureMesh.Core.Libp2p.HolePunch;
using SecureMesh.Core.Libp2p.Relay;
using SecureMesh.Node.Network;
using SecureMesh.Node.Relay;

namespace SecureMesh.Node.Tests.Relay;

/// <summary>
/// Circuit relay v2 between real nodes on 127.0.0.1: R relays, A holds a reservation on R, B dials A through R. The
/// relayed connection runs Noise end to end and is authorized like any other; the relay serves only peers it trusts,
/// within its limits, writes what it served to the audit log, and survives garbage.
/// </summary>
public sealed class RelayTests : IAsyncLifetime
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(20);
    private const string Sink = "/securemesh-test/sink/1.0.0";
    private TestNode _r = null!;
    private TestNode _a = null!;
    private TestNode _b = null!;
    private long _sunk;

    public Task InitializeAsync()
    {
        // A sink protocol: reads everything it is sent (to push data through a circuit).
        StreamProtocol sink = new(Sink, async (_, stream, ct) =>
        {
            var buffer = new byte[64 * 1024];
            int n;
            while ((n = await stream.ReadAsync(buffer, ct)) > 0)
            {
                Interlocked.Add(ref _sunk, n);
            }
        });
        _r = TestNode.Start(protocols: [sink]);
        _a = TestNode.Start(protocols: [sink]);
        _b = TestNode.Start(protocols: [sink]);
        foreach (var (x, y) in new[] { (_r, _a), (_r, _b), (_a, _r), (_a, _b), (_b, _r), (_b, _a) })
        {
            x.Db.Trust.AddPeer(y.Identity.PeerId, trusted: true);
        }
        return Task.CompletedTask;
    }

    public async Task DisposeAsync()
    {
        await _b.DisposeAsync();
        await _a.DisposeAsync();
        await _r.DisposeAsync();
    }

    private string Circuit(TestNode target) => $"/p2p/{_r.Identity.PeerId}/p2p-circuit/p2p/{target.Identity.PeerId}";

    /// <summary>A connects to R and reserves; returns A's reservation.</summary>
    private async Task<RelayReservationInfo> ReserveAsync(TestNode client)
    {
        var session = await client.Node.ConnectAsync(_r.Identity.PeerId, _r.EndPoint, CancellationToken.None);
        await Wait.UntilAsync(() => session.Identified is not null, Patience, "identify of the relay");
        Assert.Contains(CircuitRelay.HopProtocolId, session.Identified!.Protocols);
        await client.Node.RelayTickAsync(CancellationToken.None);
        await Wait.UntilAsync(() => client.Node.RelayReservations.Count == 1, Patience, "the reservation");
        return client.Node.RelayReservations[0];
    }

    [Fact]
    public async Task A_trusted_peer_reserves_on_the_relay_and_is_dialled_through_it_end_to_end()
    {
        var reservation = await ReserveAsync(_a);
        Assert.Equal(_r.Identity.PeerId, reservation.Relay);
        Assert.True(reservation.Expire > DateTimeOffset.UtcNow.AddMinutes(30));
        Assert.All(reservation.Addresses, a => Assert.EndsWith($"/p2p/{_r.Identity.PeerId}/p2p-circuit/p2p/{_a.Identity.PeerId}", a));
        Assert.True(_r.Node.HoldsReservationHere(_a.Identity.PeerId));

        await _b.Node.ConnectAsync(_r.Identity.PeerId, _r.EndPoint, CancellationToken.None);
        var session = await _b.Node.ConnectAsync(_a.Identity.PeerId, Circuit(_a), CancellationToken.None);
        Assert.Equal(ConnectionPath.Relayed, session.Path);
        Assert.Equal(_r.Identity.PeerId, session.RelayPeerId);
        Assert.Equal(_a.Identity.PeerId, session.PeerId);
        await Wait.UntilAsync(() => _a.Node.GetSession(_b.Identity.PeerId) is { Path: ConnectionPath.Relayed }, Patience, "A's side of the circuit");
        Assert.Equal(_r.Identity.PeerId, _a.Node.GetSession(_b.Identity.PeerId)!.RelayPeerId);
        // Both ends ran the handshake with each other, not with the relay: their words match.
        Assert.Equal(session.ShortAuthString, _a.Node.GetSession(_b.Identity.PeerId)!.ShortAuthString);

        var rtts = await _b.Node.PingAsync(session, 3, TimeSpan.FromMilliseconds(10), CancellationToken.None);
        Assert.Equal(3, rtts.Count);

        // A's identify tells B its circuit address.
        await Wait.UntilAsync(() => session.Identified is not null, Patience, "identify over the circuit");
        var advertised = session.Identified!.ListenAddrs.Select(a => Core.Addressing.Multiaddr.FromBytes(a).ToString()).ToList();
        Assert.Contains(advertised, a => a.EndsWith("/p2p-circuit/p2p/" + _a.Identity.PeerId, StringComparison.Ordinal));

        var audit = _r.Db.Audit.List();
        Assert.Contains(audit, e => e.Event == "relay.reservation" && e.PeerId == _a.Identity.PeerId.Text);
        Assert.Contains(audit, e => e.Event == "relay.circuit" && e.PeerId == _b.Identity.PeerId.Text && e.Detail.Contains(_a.Identity.PeerId.Text, StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_reservation_is_renewed_before_it_expires_and_dropped_when_its_connection_ends()
    {
        // A relay granting 40 s: with less than 30 s (or a quarter) left the client renews at its next round.
        await using var shortRelay = TestNode.Start(relay: new SecureMesh.Node.Relay.RelayOptions { ReservationTtl = TimeSpan.FromSeconds(40) });
        shortRelay.Db.Trust.AddPeer(_a.Identity.PeerId, trusted: true);
        _a.Db.Trust.AddPeer(shortRelay.Identity.PeerId, trusted: true);
        var session = await _a.Node.ConnectAsync(shortRelay.Identity.PeerId, shortRelay.EndPoint, CancellationToken.None);
        await Wait.UntilAsync(() => session.Identified is not null, Patience, "identify of the relay");
        await _a.Node.RelayTickAsync(CancellationToken.None);
        var first = Assert.Single(_a.Node.RelayReservations).Expire;
        await Task.Delay(1100);
        await _a.Node.RelayTickAsync(CancellationToken.None);
        var renewed = Assert.Single(_a.Node.RelayReservations).Expire;
        Assert.True(renewed > first, $"not renewed: {first:O} then {renewed:O}");
        Assert.True(shortRelay.Node.HoldsReservationHere(_a.Identity.PeerId));

        await shortRelay.DisposeAsync();
        await Wait.UntilAsync(() => _a.Node.GetSession(session.PeerId) is null, Patience, "the relay's connection to end");
        await _a.Node.RelayTickAsync(CancellationToken.None);
        Assert.Empty(_a.Node.RelayReservations);
    }

    [Fact]
    public async Task A_relay_that_connects_you_to_another_peer_is_caught_by_the_handshake()
    {
        // C also holds a reservation and would take B's circuit; the relay hands B's circuit for A to C.
        await using var c = TestNode.Start();
        c.Db.Trust.AddPeer(_r.Identity.PeerId, trusted: true);
        c.Db.Trust.AddPeer(_b.Identity.PeerId, trusted: true);
        _r.Db.Trust.AddPeer(c.Identity.PeerId, trusted: true);
        _b.Db.Trust.AddPeer(c.Identity.PeerId, trusted: true);
        await ReserveAsync(_a);
        await ReserveAsync(c);
        _r.Node.RelayServiceForTest.TargetForTest = asked => asked.Equals(_a.Identity.PeerId) ? c.Identity.PeerId : asked;
        await _b.Node.ConnectAsync(_r.Identity.PeerId, _r.EndPoint, CancellationToken.None);

        var error = await Assert.ThrowsAsync<SecureMeshException>(() => _b.Node.ConnectAsync(_a.Identity.PeerId, Circuit(_a), CancellationToken.None));
        Assert.Equal(SecureMeshErrorKind.Unauthorized, error.Kind);
        Assert.Null(_b.Node.GetSession(_a.Identity.PeerId));
        Assert.Null(_b.Node.GetSession(c.Identity.PeerId));
        await Task.Delay(300);
        Assert.Null(c.Node.GetSession(_b.Identity.PeerId));
    }

    [Fact]
    public async Task A_trusted_peer_gets_no_circuit_to_a_peer_the_relay_does_not_trust_nor_to_one_without_a_reservation()
    {
        var session = await _b.Node.ConnectAsync(_r.Identity.PeerId, _r.EndPoint, CancellationToken.None);
        var stranger = NodeIdentity.Generate();
        var error = await Assert.ThrowsAsync<SecureMeshException>(() => _b.Node.RelayClientForTest.OpenCircuitAsync(session, stranger.PeerId, CancellationToken.None));
        Assert.Contains(nameof(RelayStatus.PermissionDenied), error.Message, StringComparison.Ordinal);
        // A is trusted by R but holds no reservation.
        error = await Assert.ThrowsAsync<SecureMeshException>(() => _b.Node.RelayClientForTest.OpenCircuitAsync(session, _a.Identity.PeerId, CancellationToken.None));
        Assert.Contains(nameof(RelayStatus.NoReservation), error.Message, StringComparison.Ordinal);
        Assert.Contains(_r.Db.Audit.List(), e => e.Event == "relay.refused" && e.Detail.Contains(stranger.PeerId.Text, StringComparison.Ordinal));
        Assert.Equal(0, _r.Node.RelayedCircuits);
    }

    [Fact]
    public async Task A_stranger_gets_neither_a_reservation_nor_a_circuit()
    {
        await using var stranger = TestNode.Start();
        stranger.Db.Trust.AddPeer(_r.Identity.PeerId, trusted: true);
        // The relay does not trust it: the connection ends after the handshake, before any hop stream.
        await Assert.ThrowsAnyAsync<Exception>(async () =>
        {
            var session = await stranger.Node.ConnectAsync(_r.Identity.PeerId, _r.EndPoint, CancellationToken.None);
            await stranger.Node.RelayClientForTest.ReserveAsync(session, CancellationToken.None);
        });
        Assert.False(_r.Node.HoldsReservationHere(stranger.Identity.PeerId));
        Assert.DoesNotContain(_r.Db.Audit.List(), e => e.Event == "relay.reservation" && e.PeerId == stranger.Identity.PeerId.Text);
    }

    [Fact]
    public async Task With_relay_service_off_the_hop_protocol_is_neither_offered_nor_served()
    {
        _r.Db.Config.Set(NodeSettings.RelayService, "off");
        await _r.Node.RelayTickAsync(CancellationToken.None);
        var session = await _a.Node.ConnectAsync(_r.Identity.PeerId, _r.EndPoint, CancellationToken.None);
        await Wait.UntilAsync(() => session.Identified is not null, Patience, "identify");
        Assert.DoesNotContain(CircuitRelay.HopProtocolId, session.Identified!.Protocols);
        var error = await Assert.ThrowsAsync<SecureMeshException>(() => _a.Node.RelayClientForTest.ReserveAsync(session, CancellationToken.None));
        Assert.Equal(SecureMeshErrorKind.NotFound, error.Kind);
        Assert.False(_r.Node.HoldsReservationHere(_a.Identity.PeerId));
    }

    [Fact]
    public async Task A_trusted_peer_cannot_exceed_the_circuits_per_peer_limit()
    {
        _r.Db.Config.Set(NodeSettings.RelayCircuitsPerPeer, "1");
        await _r.Node.RelayTickAsync(CancellationToken.None);
        await ReserveAsync(_a);
        var session = await _b.Node.ConnectAsync(_r.Identity.PeerId, _r.EndPoint, CancellationToken.None);
        // The first circuit is held open (its Noise handshake runs on A's side; the raw stream stays with the test).
        await using var first = await _b.Node.RelayClientForTest.OpenCircuitAsync(session, _a.Identity.PeerId, CancellationToken.None);
        Assert.Equal(1, _r.Node.RelayedCircuits);
        var error = await Assert.ThrowsAsync<SecureMeshException>(() => _b.Node.RelayClientForTest.OpenCircuitAsync(session, _a.Identity.PeerId, CancellationToken.None));
        Assert.Contains(nameof(RelayStatus.ResourceLimitExceeded), error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_circuit_over_its_data_limit_is_cut()
    {
        _r.Db.Config.Set(NodeSettings.RelayCircuitData, "256k");
        await _r.Node.RelayTickAsync(CancellationToken.None);
        var reservation = await ReserveAsync(_a);
        Assert.Equal(256UL * 1024, reservation.Limit?.Data);
        await _b.Node.ConnectAsync(_r.Identity.PeerId, _r.EndPoint, CancellationToken.None);
        var session = await _b.Node.ConnectAsync(_a.Identity.PeerId, Circuit(_a), CancellationToken.None);
        var stream = await session.OpenStreamAsync(Sink, CancellationToken.None);
        var chunk = new byte[32 * 1024];
        await Assert.ThrowsAnyAsync<Exception>(async () =>
        {
            for (var i = 0; i < 64; i++)
            {
                await stream.WriteAsync(chunk);
            }
            await Task.Delay(Patience, session.Closing);
        });
        await Wait.UntilAsync(() => _b.Node.GetSession(_a.Identity.PeerId) is null, Patience, "the relayed session to end");
        Assert.True(Interlocked.Read(ref _sunk) < 256 * 1024, $"{_sunk} bytes got through");
        Assert.Equal(0, _r.Node.RelayedCircuits);
    }

    [Fact]
    public async Task A_circuit_over_its_duration_limit_is_cut()
    {
        _r.Db.Config.Set(NodeSettings.RelayCircuitDuration, "1");
        await _r.Node.RelayTickAsync(CancellationToken.None);
        await ReserveAsync(_a);
        await _b.Node.ConnectAsync(_r.Identity.PeerId, _r.EndPoint, CancellationToken.None);
        var session = await _b.Node.ConnectAsync(_a.Identity.PeerId, Circuit(_a), CancellationToken.None);
        Assert.Equal(ConnectionPath.Relayed, session.Path);
        await Wait.UntilAsync(() => session.Closing.IsCancellationRequested, Patience, "the circuit's end after one second");
    }

    [Theory]
    [InlineData(new byte[] { 0x80, 0x80, 0x80, 0x01 })] // a length of 2 MiB
    [InlineData(new byte[] { 0x05, 0xff, 0xff, 0xff, 0xff, 0xff })] // five bytes of garbage protobuf
    [InlineData(new byte[] { 0x02, 0x08, 0x07 })] // type 7
    [InlineData(new byte[] { 0x03, 0x08, 0x01, 0x12 })] // a peer field cut short
    public async Task Garbage_on_hop_and_stop_resets_the_stream_and_nothing_else(byte[] garbage)
    {
        await ReserveAsync(_a);
        var toRelay = _a.Node.GetSession(_r.Identity.PeerId)!;
        await using (var hop = await toRelay.OpenStreamAsync(CircuitRelay.HopProtocolId, CancellationToken.None))
        {
            await hop.WriteAsync(garbage);
            await AssertEndsAsync(hop);
        }
        // The relay sends garbage on a stop stream to A.
        var fromRelay = _r.Node.GetSession(_a.Identity.PeerId)!;
        await using (var stop = await fromRelay.OpenStreamAsync(CircuitRelay.StopProtocolId, CancellationToken.None))
        {
            await stop.WriteAsync(garbage);
            await AssertEndsAsync(stop);
        }
        // Both sessions carry on, and the relay still relays.
        Assert.Same(toRelay, _a.Node.GetSession(_r.Identity.PeerId));
        await _b.Node.ConnectAsync(_r.Identity.PeerId, _r.EndPoint, CancellationToken.None);
        var session = await _b.Node.ConnectAsync(_a.Identity.PeerId, Circuit(_a), CancellationToken.None);
        Assert.Equal(ConnectionPath.Relayed, session.Path);
    }

    [Fact]
    public async Task A_stop_stream_from_a_peer_this_node_holds_no_reservation_on_is_refused()
    {
        var session = await _b.Node.ConnectAsync(_a.Identity.PeerId, _a.EndPoint, CancellationToken.None);
        await using var stop = await session.OpenStreamAsync(CircuitRelay.StopProtocolId, CancellationToken.None);
        await CircuitRelay.WriteAsync(stop, new StopMessage(StopType.Connect) { Peer = new RelayPeer(_r.Identity.PeerId) }, CancellationToken.None);
        var answer = await CircuitRelay.ReadStopAsync(stop, CancellationToken.None);
        Assert.Equal(RelayStatus.PermissionDenied, answer.Status);
    }


    [Fact]
    public async Task Dcutr_on_a_direct_connection_is_refused()
    {
        var session = await _b.Node.ConnectAsync(_a.Identity.PeerId, _a.EndPoint, CancellationToken.None);
        await using var stream = await session.OpenStreamAsync(HolePunchMessage.ProtocolId, CancellationToken.None);
        await new HolePunchMessage(HolePunchType.Connect, [Core.Addressing.Multiaddr.Parse("/ip4/10.255.255.1/tcp/9").ToBytes()]).WriteAsync(stream, CancellationToken.None);
        // No CONNECT comes back (the peer would dial us then): the stream just ends.
        await AssertEndsAsync(stream, expectNothing: true);
        Assert.Same(session, _b.Node.GetSession(_a.Identity.PeerId));
        Assert.Equal(ConnectionPath.Direct, session.Path);
    }

    [Fact]
    public async Task Garbage_on_the_dcutr_stream_ends_it_and_the_relayed_connection_stays()
    {
        await ReserveAsync(_a);
        await _b.Node.ConnectAsync(_r.Identity.PeerId, _r.EndPoint, CancellationToken.None);
        var session = await _b.Node.ConnectAsync(_a.Identity.PeerId, Circuit(_a), CancellationToken.None);
        await Wait.UntilAsync(() => _a.Node.GetSession(_b.Identity.PeerId) is { Path: ConnectionPath.Relayed }, Patience, "A's side of the circuit");
        var fromA = _a.Node.GetSession(_b.Identity.PeerId)!;
        // A's own hole punch finds nothing to dial on loopback and gives up; then A sends garbage on a new DCUtR stream.
        await Task.Delay(1000);
        await using (var stream = await fromA.OpenStreamAsync(HolePunchMessage.ProtocolId, CancellationToken.None))
        {
            await stream.WriteAsync(new byte[] { 0x80, 0x80, 0x80, 0x80, 0x01 });
            await AssertEndsAsync(stream);
        }
        Assert.Same(session, _b.Node.GetSession(_a.Identity.PeerId));
        Assert.Equal(ConnectionPath.Relayed, session.Path);
        Assert.Equal(3, (await _b.Node.PingAsync(session, 3, TimeSpan.FromMilliseconds(10), CancellationToken.None)).Count);
    }

    /// <summary>The peer answers (at most a status; nothing at all with <paramref name="expectNothing"/>) and ends or resets the stream within a few seconds.</summary>
    private static async Task AssertEndsAsync(Stream stream, bool expectNothing = false)
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        var buffer = new byte[8192];
        var total = 0;
        try
        {
            int n;
            while ((n = await stream.ReadAsync(buffer, timeout.Token)) > 0)
            {
                total += n;
                Assert.True(total < 8192, "the peer kept sending");
                Assert.False(expectNothing, "the peer answered");
            }
        }
        catch (Exception e) when (e is SecureMeshException or IOException)
        {
            // Reset: as good as an end.
        }
        Assert.False(timeout.IsCancellationRequested, "the stream was neither ended nor reset");
    }

    [Theory]
    [InlineData(ConnectionPath.Direct, ConnectionDirection.Outbound, "127.0.0.1:50000", "", true)]            // we dialled it: the fallback
    [InlineData(ConnectionPath.Relayed, ConnectionDirection.Outbound, null, "203.0.113.7:4001", false)]
    [InlineData(ConnectionPath.HolePunched, ConnectionDirection.Outbound, "203.0.113.7:4001", "203.0.113.7:4001", false)]
    [InlineData(ConnectionPath.Direct, ConnectionDirection.Inbound, "203.0.113.7:50000", "203.0.113.7:4001", true)]  // public, advertised where seen
    [InlineData(ConnectionPath.Direct, ConnectionDirection.Inbound, "[::ffff:203.0.113.7]:50000", "203.0.113.7:4001", true)]
    [InlineData(ConnectionPath.Direct, ConnectionDirection.Inbound, "203.0.113.7:50000", "192.168.1.5:4001", false)] // behind a NAT, nothing confirmed
    [InlineData(ConnectionPath.Direct, ConnectionDirection.Inbound, "203.0.113.7:50000", "198.51.100.1:4001", false)] // claims an address elsewhere
    [InlineData(ConnectionPath.Direct, ConnectionDirection.Inbound, "10.0.0.5:50000", "10.0.0.5:4001", false)]       // a private network shows nothing
    [InlineData(ConnectionPath.Direct, ConnectionDirection.Inbound, "127.0.0.1:50000", "127.0.0.1:4001", false)]
    [InlineData(ConnectionPath.Direct, ConnectionDirection.Inbound, null, "203.0.113.7:4001", false)]
    public void A_default_relay_is_a_peer_known_reachable(ConnectionPath path, ConnectionDirection direction, string? remote, string advertised, bool expected)
    {
        var listen = advertised.Length == 0 ? [] : new[] { System.Net.IPEndPoint.Parse(advertised) };
        Assert.Equal(expected, RelayClient.KnownReachable(path, direction, remote is null ? null : System.Net.IPEndPoint.Parse(remote), listen));
    }

    [Fact]
    public async Task A_peer_that_dialled_us_from_a_private_address_is_not_used_as_a_default_relay()
    {
        // R dials A (loopback: nothing shows R is reachable by others), so A does not reserve on it.
        var session = await _r.Node.ConnectAsync(_a.Identity.PeerId, _a.EndPoint, CancellationToken.None);
        await Wait.UntilAsync(() => _a.Node.GetSession(_r.Identity.PeerId)?.Identified is not null, Patience, "identify of the relay");
        await _a.Node.RelayTickAsync(CancellationToken.None);
        Assert.Empty(_a.Node.RelayReservations);
        Assert.False(_r.Node.HoldsReservationHere(_a.Identity.PeerId));
        Assert.Equal(ConnectionDirection.Outbound, session.Direction);
    }
}
