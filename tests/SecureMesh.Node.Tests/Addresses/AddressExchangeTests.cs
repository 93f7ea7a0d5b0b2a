using System.Net;
using SecureMesh.Core.Identity;
using SecureMesh.Core.Libp2p;
using SecureMesh.Node.Control;
using SecureMesh.Node.Network;
using SecureMesh.Node.Transfer;
using SecureMesh.Storage;

namespace SecureMesh.Node.Tests.Addresses;

/// <summary>
/// Issue 17, item 5: addresses learned, not typed. B moves to a new address and port; A, whose only typed address for
/// B is the old one, finds B again by asking C, a peer both trust; the learned address is stored with its success and
/// tried first next time. C tells nothing about a peer it does not trust.
/// </summary>
public sealed class AddressExchangeTests : IAsyncLifetime
{
    private readonly List<string> _homes = [];
    private readonly List<IAsyncDisposable> _running = [];
    private readonly List<IDisposable> _owned = [];

    public Task InitializeAsync() => Task.CompletedTask;

    private sealed record Peer(NodeIdentity Id, SecureMeshDatabase Db, string Home);

    private Peer NewPeer()
    {
        var home = Directory.CreateTempSubdirectory("securemesh-addrs-").FullName;
        _homes.Add(home);
        var id = NodeIdentity.Generate();
        var db = SecureMeshDatabase.Open(home);
        _owned.Add(db);
        _owned.Add(id);
        return new Peer(id, db, home);
    }

    private async Task<MeshHost> StartAsync(Peer peer, string address = "127.0.0.1")
    {
        var host = await MeshHost.StartAsync(peer.Id, peer.Db, new MeshHostOptions { Home = peer.Home, Listen = new IPEndPoint(IPAddress.Parse(address), 0) }, CancellationToken.None);
        _running.Add(host);
        return host;
    }

    private static async Task IdentifiedAsync(MeshHost host, PeerId peer) =>
        await Wait.UntilAsync(() => host.Node.GetSession(peer)?.Identified is not null, TimeSpan.FromSeconds(10), $"identify of {peer}");

    private static void TrustEachOther(params Peer[] peers)
    {
        foreach (var x in peers)
        {
            foreach (var y in peers.Where(y => y != x))
            {
                x.Db.Trust.AddPeer(y.Id.PeerId, null, trusted: true);
            }
        }
    }

    /// <summary>Connects <paramref name="host"/> to <paramref name="relay"/> and waits for its reservation there.</summary>
    private static async Task ReserveAsync(MeshHost host, MeshHost relay)
    {
        await host.Node.ConnectAsync(relay.Node.PeerId, relay.Node.LocalEndPoint, CancellationToken.None);
        await IdentifiedAsync(host, relay.Node.PeerId);
        await host.Node.RelayTickAsync(CancellationToken.None);
        await Wait.UntilAsync(() => host.Node.RelayReservations.Any(x => x.Relay.Equals(relay.Node.PeerId)), TimeSpan.FromSeconds(20), "the reservation on the relay");
    }

    [Fact]
    public async Task A_peer_that_moved_is_found_again_through_a_peer_both_trust()
    {
        var a = NewPeer();
        var b = NewPeer();
        var c = NewPeer();
        TrustEachOther(a, b, c);
        var hostA = await StartAsync(a);
        var hostC = await StartAsync(c);
        var hostB = await StartAsync(b);
        var oldB = hostB.Node.LocalEndPoint;
        // A knows B only at the address typed in once.
        a.Db.Trust.AddAddress(b.Id.PeerId, PeerAddressFormat.FromEndPoint(oldB));
        await hostA.Node.ConnectAsync(c.Id.PeerId, hostC.Node.LocalEndPoint, CancellationToken.None);
        await hostB.Node.ConnectAsync(c.Id.PeerId, hostC.Node.LocalEndPoint, CancellationToken.None);
        await IdentifiedAsync(hostA, c.Id.PeerId);
        await IdentifiedAsync(hostC, b.Id.PeerId);

        // B's home address changes: it comes back on another IP and port, and reconnects to C by itself.
        await hostB.DisposeAsync();
        _running.Remove(hostB);
        // A may have reached B at the typed address meanwhile (its connector runs every second): that session ends with B.
        await Wait.UntilAsync(() => hostA.Node.GetSession(b.Id.PeerId) is null, TimeSpan.FromSeconds(20), "A's session with B to end");
        hostB = await StartAsync(b, "127.0.0.2");
        var newB = hostB.Node.LocalEndPoint;
        Assert.NotEqual(oldB, newB);
        await hostB.Node.ConnectAsync(c.Id.PeerId, hostC.Node.LocalEndPoint, CancellationToken.None);
        await IdentifiedAsync(hostC, b.Id.PeerId);

        // Nobody types anything: A's connector fails at the old address, asks C, and reaches B at the new one (its
        // background loop may be dialling B already; connecting all then waits for that dial, and dials again if it failed).
        await hostA.Connector.ConnectAllAsync(TimeSpan.FromSeconds(20), CancellationToken.None);
        var session = hostA.Node.GetSession(b.Id.PeerId);
        Assert.NotNull(session);
        Assert.Equal(newB, session.RemoteEndPoint);

        // The dial that made the session marks the learned address right after (the loop's dial may be the one).
        await Wait.UntilAsync(() => a.Db.LearnedAddresses.List(b.Id.PeerId).Any(l => l.LastSuccess is not null), TimeSpan.FromSeconds(10), "the learned address marked as working");
        var learned = a.Db.LearnedAddresses.List(b.Id.PeerId);
        var worked = Assert.Single(learned, l => l.LastSuccess is not null);
        Assert.Equal(PeerAddressFormat.FromEndPoint(newB), worked.Address);
        // Next time the address that worked comes first.
        var order = PeerConnector.DialOrder(a.Db.Trust.GetPeer(b.Id.PeerId)!, learned);
        Assert.Equal(PeerAddressFormat.FromEndPoint(newB), order[0]);
        // The typed address is still what the user typed.
        Assert.Contains(a.Db.Trust.GetPeer(b.Id.PeerId)!.Addresses, x => x.Address == PeerAddressFormat.FromEndPoint(oldB) && x.Source == AddressSource.User);
    }

    [Fact]
    public async Task Nothing_is_told_about_a_peer_the_answerer_does_not_trust_nor_to_a_stranger()
    {
        var a = NewPeer();
        var c = NewPeer();
        var d = NewPeer();
        a.Db.Trust.AddPeer(c.Id.PeerId, null, trusted: true);
        c.Db.Trust.AddPeer(a.Id.PeerId, null, trusted: true);
        a.Db.Trust.AddPeer(d.Id.PeerId, null, trusted: true);
        // C knows D, with an address, but does not trust it.
        c.Db.Trust.AddPeer(d.Id.PeerId, null, addresses: ["127.0.0.1:4999"]);
        var hostA = await StartAsync(a);
        var hostC = await StartAsync(c);
        await hostA.Node.ConnectAsync(c.Id.PeerId, hostC.Node.LocalEndPoint, CancellationToken.None);
        await IdentifiedAsync(hostA, c.Id.PeerId);

        var session = hostA.Node.GetSession(c.Id.PeerId)!;
        await using (var stream = await session.OpenStreamAsync(AddressExchangeMessages.ProtocolId, CancellationToken.None))
        {
            await AddressExchangeMessages.WriteRequestAsync(stream, d.Id.PeerId, CancellationToken.None);
            Assert.Empty(await AddressExchangeMessages.ReadAnswerAsync(stream, CancellationToken.None));
        }
        Assert.Empty(a.Db.LearnedAddresses.List(d.Id.PeerId));

        // A stranger never gets a session, so never a stream of the protocol.
        using var stranger = NodeIdentity.Generate();
        await using var link = await PeerLink.DialAsync(stranger, hostC.Node.LocalEndPoint, c.Id.PeerId, TimeSpan.FromSeconds(5), CancellationToken.None);
        await Assert.ThrowsAnyAsync<Exception>(async () =>
        {
            await using var stream = await link.OpenStreamAsync(AddressExchangeMessages.ProtocolId, CancellationToken.None);
            await AddressExchangeMessages.WriteRequestAsync(stream, a.Id.PeerId, CancellationToken.None);
            await AddressExchangeMessages.ReadAnswerAsync(stream, CancellationToken.None);
        });
    }

    [Fact]
    public void Learned_addresses_are_kept_only_for_trusted_peers_and_capped()
    {
        var a = NewPeer();
        using var trusted = NodeIdentity.Generate();
        using var pending = NodeIdentity.Generate();
        a.Db.Trust.AddPeer(trusted.PeerId, null, trusted: true);
        a.Db.Trust.AddPeer(pending.PeerId, null, trusted: false);
        Assert.Equal(0, a.Db.LearnedAddresses.Learn(pending.PeerId, ["10.0.0.1:4747"], "exchange"));
        Assert.Empty(a.Db.LearnedAddresses.List(pending.PeerId));
        var many = Enumerable.Range(1, 40).Select(i => $"10.0.0.{i}:4747").ToList();
        a.Db.LearnedAddresses.Learn(trusted.PeerId, many[..16], "identify");
        Assert.True(a.Db.LearnedAddresses.MarkSuccess(trusted.PeerId, "10.0.0.3:4747"));
        a.Db.LearnedAddresses.Learn(trusted.PeerId, many[16..32], "exchange");
        var kept = a.Db.LearnedAddresses.List(trusted.PeerId);
        Assert.Equal(LearnedAddressStore.MaxPerPeer, kept.Count);
        // The one that worked survives the flood and comes first.
        Assert.Equal("10.0.0.3:4747", kept[0].Address);
        // Another peer's /p2p is never learned for this one.
        Assert.Equal(0, a.Db.LearnedAddresses.Learn(trusted.PeerId, [$"/ip4/10.0.0.99/tcp/1/p2p/{pending.PeerId}"], "exchange"));
    }

    [Fact]
    public void Circuit_addresses_are_learned_only_through_a_trusted_relay_and_dialled_in_order_of_success()
    {
        var a = NewPeer();
        using var peer = NodeIdentity.Generate();
        using var relay = NodeIdentity.Generate();
        using var stranger = NodeIdentity.Generate();
        a.Db.Trust.AddPeer(peer.PeerId, null, trusted: true, addresses: ["10.0.0.1:4747"]);
        a.Db.Trust.AddPeer(relay.PeerId, null, trusted: true);
        var good = $"/ip4/192.0.2.9/tcp/4001/p2p/{relay.PeerId}/p2p-circuit/p2p/{peer.PeerId}";
        var learned = a.Db.LearnedAddresses.Learn(peer.PeerId,
        [
            good,
            $"/p2p/{stranger.PeerId}/p2p-circuit/p2p/{peer.PeerId}",          // through a relay not trusted here
            $"/p2p/{relay.PeerId}/p2p-circuit/p2p/{stranger.PeerId}",         // another peer's circuit
            $"/p2p/{peer.PeerId}/p2p-circuit/p2p/{peer.PeerId}",              // through itself
            $"/ip4/192.0.2.9/udp/4001/p2p/{relay.PeerId}/p2p-circuit/p2p/{peer.PeerId}", // no TCP to the relay
            "10.0.0.2:4747",                                                   // not a circuit
        ], "relay");
        Assert.Equal(1, learned);
        var row = Assert.Single(a.Db.LearnedAddresses.List(peer.PeerId));
        Assert.Equal(("relay", good), (row.Source, row.Address));

        bool Trusted(PeerId p) => a.Db.Trust.GetPeer(p)?.State == PeerState.Trusted;
        var record = a.Db.Trust.GetPeer(peer.PeerId)!;
        // Never worked: after the typed address; without the relay check, not at all.
        Assert.Equal(["10.0.0.1:4747", good], PeerConnector.DialOrder(record, a.Db.LearnedAddresses.List(peer.PeerId), Trusted));
        Assert.Equal(["10.0.0.1:4747"], PeerConnector.DialOrder(record, a.Db.LearnedAddresses.List(peer.PeerId)));
        // It worked (marked under the text the connector dialled): first next time.
        Assert.True(a.Db.LearnedAddresses.MarkSuccess(peer.PeerId, good));
        Assert.Equal([good, "10.0.0.1:4747"], PeerConnector.DialOrder(record, a.Db.LearnedAddresses.List(peer.PeerId), Trusted));
        // The relay is no longer trusted: its circuit is skipped.
        a.Db.Trust.Block(relay.PeerId);
        Assert.Equal(["10.0.0.1:4747"], PeerConnector.DialOrder(record, a.Db.LearnedAddresses.List(peer.PeerId), Trusted));
    }

    [Fact]
    public void A_typed_circuit_address_is_dialled_only_through_a_trusted_relay()
    {
        var a = NewPeer();
        using var peer = NodeIdentity.Generate();
        using var relay = NodeIdentity.Generate();
        using var stranger = NodeIdentity.Generate();
        var typed = $"/ip4/192.0.2.9/tcp/4001/p2p/{relay.PeerId}/p2p-circuit/p2p/{peer.PeerId}";
        var viaStranger = $"/p2p/{stranger.PeerId}/p2p-circuit/p2p/{peer.PeerId}";
        a.Db.Trust.AddPeer(peer.PeerId, null, trusted: true, addresses: ["10.0.0.1:4747", typed, viaStranger]);
        a.Db.Trust.AddPeer(relay.PeerId, null, trusted: true);
        bool Trusted(PeerId p) => a.Db.Trust.GetPeer(p)?.State == PeerState.Trusted;
        var record = a.Db.Trust.GetPeer(peer.PeerId)!;
        Assert.Contains(record.Addresses, x => x.Address == typed && x.Source == AddressSource.User);
        // Typed like the direct one, so tried with it; the one through a peer not trusted here is not tried at all.
        Assert.Equal(["10.0.0.1:4747", typed], PeerConnector.DialOrder(record, [], Trusted));
        Assert.Equal(["10.0.0.1:4747"], PeerConnector.DialOrder(record, []));
        a.Db.Trust.Block(relay.PeerId);
        Assert.Equal(["10.0.0.1:4747"], PeerConnector.DialOrder(record, [], Trusted));
    }

    [Fact]
    public async Task A_peer_known_only_by_a_typed_circuit_address_is_reached_through_that_relay()
    {
        var (a, b, r, hostA, hostB, hostR) = await ReservedOnRelayAsync();
        // A has no address for R nor a session with it; for B, only the relayed address the user typed (R's own
        // address in front, so A can reach R first; B's ID added by the trust store).
        var typed = a.Db.Trust.AddAddress(b.Id.PeerId, $"{MultiaddrBytes.Text(hostR.Node.LocalEndPoint)}/p2p/{r.Id.PeerId}/p2p-circuit");
        Assert.True(typed);
        var stored = Assert.Single(a.Db.Trust.GetPeer(b.Id.PeerId)!.Addresses).Address;
        Assert.EndsWith($"/p2p/{r.Id.PeerId}/p2p-circuit/p2p/{b.Id.PeerId}", stored);
        Assert.Null(hostA.Node.GetSession(r.Id.PeerId));

        // What `peers connect` runs (the node's connector loop may be dialling B at the same time: either way through R).
        var info = await new NodeControlService(a.Home, a.Db, hostA.Node).ConnectPeerAsync(b.Id.PeerId.Text, CancellationToken.None);
        Assert.Equal(("relayed", r.Id.PeerId.Text), (info.Path, info.Relay));
        var session = hostA.Node.GetSession(b.Id.PeerId);
        Assert.NotNull(session);
        Assert.Equal(ConnectionPath.Relayed, session.Path);
        Assert.Equal(r.Id.PeerId, session.RelayPeerId);
        // The connector dials it too (connecting all finds the session open).
        await hostA.Connector.ConnectAllAsync(TimeSpan.FromSeconds(20), CancellationToken.None);
        Assert.Same(session, hostA.Node.GetSession(b.Id.PeerId));
        // Both ends ran the handshake with each other, not with the relay.
        await Wait.UntilAsync(() => hostB.Node.GetSession(a.Id.PeerId) is { Path: ConnectionPath.Relayed }, TimeSpan.FromSeconds(10), "B's side of the circuit");
        Assert.Equal(session.ShortAuthString, hostB.Node.GetSession(a.Id.PeerId)!.ShortAuthString);
    }

    [Fact]
    public async Task Peers_connect_skips_a_typed_circuit_address_whose_relay_is_not_trusted_and_says_why()
    {
        var a = NewPeer();
        using var b = NodeIdentity.Generate();
        using var relay = NodeIdentity.Generate();
        a.Db.Trust.AddPeer(b.PeerId, null, trusted: true);
        a.Db.Trust.AddPeer(relay.PeerId, null);   // known, pending: not trusted
        var typed = $"/ip4/127.0.0.1/tcp/9/p2p/{relay.PeerId}/p2p-circuit/p2p/{b.PeerId}";
        Assert.True(a.Db.Trust.AddAddress(b.PeerId, typed));
        var hostA = await StartAsync(a);
        var e = await Assert.ThrowsAsync<SecureMesh.Core.SecureMeshException>(() => new NodeControlService(a.Home, a.Db, hostA.Node).ConnectPeerAsync(b.PeerId.Text, CancellationToken.None));
        Assert.Equal(SecureMesh.Core.SecureMeshErrorKind.Network, e.Kind);
        Assert.Equal($"could not connect to {b.PeerId}: {typed}: its relay {relay.PeerId} is not trusted here", e.Message);
        Assert.Null(hostA.Node.GetSession(relay.PeerId));
    }

    /// <summary>A, B and relay R, all trusting each other and running, B holding a reservation on R.</summary>
    private async Task<(Peer A, Peer B, Peer R, MeshHost HostA, MeshHost HostB, MeshHost HostR)> ReservedOnRelayAsync()
    {
        var a = NewPeer();
        var b = NewPeer();
        var r = NewPeer();
        TrustEachOther(a, b, r);
        var hostR = await StartAsync(r);
        var hostB = await StartAsync(b);
        var hostA = await StartAsync(a);
        await ReserveAsync(hostB, hostR);
        return (a, b, r, hostA, hostB, hostR);
    }

    [Fact]
    public async Task A_peer_whose_direct_address_stopped_working_is_reached_through_its_learned_circuit_address()
    {
        var (a, b, r, hostA, hostB, hostR) = await ReservedOnRelayAsync();
        var oldB = hostB.Node.LocalEndPoint;
        a.Db.Trust.AddAddress(b.Id.PeerId, PeerAddressFormat.FromEndPoint(oldB));
        await hostA.Node.ConnectAsync(b.Id.PeerId, oldB, CancellationToken.None);
        // Where A reached B is written by the node's poll (SeenPeers, every 250 ms; stamped when the session was noted,
        // SeenPeersTests): wait for it, so the test reads the dial order after both records are in.
        var oldText = PeerAddressFormat.FromEndPoint(oldB);
        await Wait.UntilAsync(() => a.Db.Trust.GetPeer(b.Id.PeerId)!.Addresses.Any(x => x.Address == oldText && x.LastSeen is not null),
            TimeSpan.FromSeconds(20), "A to record where it reached B");
        // A learns B's circuit address from B's identify; A has no address for R and no session with it.
        await Wait.UntilAsync(() => a.Db.LearnedAddresses.List(b.Id.PeerId).Any(l => l.Source == "relay"), TimeSpan.FromSeconds(20), "the learned circuit address");
        var circuit = Assert.Single(a.Db.LearnedAddresses.List(b.Id.PeerId), l => l.Source == "relay").Address;
        Assert.EndsWith($"/p2p/{r.Id.PeerId}/p2p-circuit/p2p/{b.Id.PeerId}", circuit);
        Assert.Null(hostA.Node.GetSession(r.Id.PeerId));

        // B comes back listening elsewhere without telling A, and reserves on R again.
        await hostB.DisposeAsync();
        _running.Remove(hostB);
        await Wait.UntilAsync(() => hostA.Node.GetSession(b.Id.PeerId) is null, TimeSpan.FromSeconds(20), "A's session with B to end");
        hostB = await StartAsync(b);
        Assert.NotEqual(oldB, hostB.Node.LocalEndPoint);
        await ReserveAsync(hostB, hostR);

        await hostA.Connector.ConnectAllAsync(TimeSpan.FromSeconds(20), CancellationToken.None);
        var session = hostA.Node.GetSession(b.Id.PeerId);
        Assert.NotNull(session);
        Assert.Equal(ConnectionPath.Relayed, session.Path);
        Assert.Equal(r.Id.PeerId, session.RelayPeerId);
        // It was the learned circuit address that worked: it is tried first next time.
        Assert.NotNull(Assert.Single(a.Db.LearnedAddresses.List(b.Id.PeerId), l => l.Address == circuit).LastSuccess);
        var order = PeerConnector.DialOrder(a.Db.Trust.GetPeer(b.Id.PeerId)!, a.Db.LearnedAddresses.List(b.Id.PeerId), p => a.Db.Trust.GetPeer(p)?.State == PeerState.Trusted);
        Assert.Equal(circuit, order[0]);
    }

    [Fact]
    public async Task A_peer_both_trust_passes_on_the_circuit_address_and_it_is_kept_only_through_a_trusted_relay()
    {
        var a = NewPeer();
        var b = NewPeer();
        var c = NewPeer();
        var r = NewPeer();
        foreach (var (x, y) in new[] { (a, c), (a, b), (c, a), (c, b), (b, c), (b, r), (r, b) })
        {
            x.Db.Trust.AddPeer(y.Id.PeerId, null, trusted: true);
        }
        var hostR = await StartAsync(r);
        var hostB = await StartAsync(b);
        var hostC = await StartAsync(c);
        var hostA = await StartAsync(a);
        await ReserveAsync(hostB, hostR);
        await hostB.Node.ConnectAsync(c.Id.PeerId, hostC.Node.LocalEndPoint, CancellationToken.None);
        await Wait.UntilAsync(() => hostC.Node.GetSession(b.Id.PeerId)?.Identified?.ListenAddrs.Any(IsCircuit) == true, TimeSpan.FromSeconds(20), "B's circuit address at C");
        await hostA.Node.ConnectAsync(c.Id.PeerId, hostC.Node.LocalEndPoint, CancellationToken.None);
        await IdentifiedAsync(hostA, c.Id.PeerId);

        IReadOnlyList<byte[]> answer;
        await using (var stream = await hostA.Node.GetSession(c.Id.PeerId)!.OpenStreamAsync(AddressExchangeMessages.ProtocolId, CancellationToken.None))
        {
            await AddressExchangeMessages.WriteRequestAsync(stream, b.Id.PeerId, CancellationToken.None);
            answer = await AddressExchangeMessages.ReadAnswerAsync(stream, CancellationToken.None);
        }
        var circuit = Core.Addressing.Multiaddr.FromBytes(Assert.Single(answer, IsCircuit)).ToString();
        Assert.EndsWith($"/p2p/{r.Id.PeerId}/p2p-circuit/p2p/{b.Id.PeerId}", circuit);
        // A does not trust R: the circuit cannot work for A and is not kept; once A trusts R, it is.
        Assert.Equal(0, a.Db.LearnedAddresses.Learn(b.Id.PeerId, [circuit], "relay"));
        a.Db.Trust.AddPeer(r.Id.PeerId, null, trusted: true);
        Assert.Equal(1, a.Db.LearnedAddresses.Learn(b.Id.PeerId, [circuit], "relay"));
    }

    private static bool IsCircuit(byte[] multiaddr) =>
        Core.Addressing.Multiaddr.TryFromBytes(multiaddr, out var m, out _) && m.ToString().Contains("/p2p-circuit", StringComparison.Ordinal);

    public async Task DisposeAsync()
    {
        foreach (var host in _running)
        {
            await host.DisposeAsync();
        }
        foreach (var owned in _owned)
        {
            owned.Dispose();
        }
        foreach (var home in _homes)
        {
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
