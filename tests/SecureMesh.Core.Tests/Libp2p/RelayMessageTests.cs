using SecureMesh.Core.Identity;
using SecureMesh.Core.Libp2p.HolePunch;
using SecureMesh.Core.Libp2p.Relay;

namespace SecureMesh.Core.Tests.Libp2p;

/// <summary>Circuit relay v2 and DCUtR messages: the spec's protobuf field numbers on the wire, and hostile bytes refused.</summary>
public sealed class RelayMessageTests
{
    private static readonly PeerId Peer = PeerId.FromPublicKey([.. Enumerable.Range(1, 32).Select(i => (byte)i)]);

    [Fact]
    public void A_reserve_is_the_two_bytes_the_spec_gives()
    {
        // HopMessage { type = RESERVE (0) }: field 1, varint 0.
        Assert.Equal(new byte[] { 0x08, 0x00 }, new HopMessage(HopType.Reserve).Encode());
    }

    [Fact]
    public void A_connect_carries_the_target_as_a_binary_peer_id_in_field_2()
    {
        var bytes = new HopMessage(HopType.Connect) { Peer = new RelayPeer(Peer) }.Encode();
        var id = Peer.ToBytes();
        Assert.Equal([0x08, 0x01, 0x12, (byte)(id.Length + 2), 0x0a, (byte)id.Length, .. id], bytes);
        Assert.Equal(Peer, HopMessage.Decode(bytes).Peer!.Id);
    }

    [Fact]
    public void A_status_with_reservation_and_limit_round_trips()
    {
        var message = new HopMessage(HopType.Status)
        {
            Status = RelayStatus.Ok,
            Reservation = new RelayReservation(1_900_000_000, [[0x04, 10, 0, 0, 1, 0x06, 0x12, 0x8B]], null),
            Limit = new RelayLimit(120, 131_072),
        };
        var decoded = HopMessage.Decode(message.Encode());
        Assert.Equal(RelayStatus.Ok, decoded.Status);
        Assert.Equal(1_900_000_000UL, decoded.Reservation!.Expire);
        Assert.Single(decoded.Reservation.Addrs);
        Assert.Equal(new RelayLimit(120, 131_072), decoded.Limit);
        // Field 5 (status) = 100 closes the message.
        Assert.Equal(new byte[] { 0x28, 0x64 }, message.Encode()[^2..]);
    }

    [Fact]
    public void No_limit_is_sent_as_no_limit_field()
    {
        var bytes = new StopMessage(StopType.Connect) { Peer = new RelayPeer(Peer), Limit = new RelayLimit(0, 0) }.Encode();
        Assert.Null(StopMessage.Decode(bytes).Limit);
    }

    [Fact]
    public void Unknown_fields_are_skipped_and_unknown_statuses_kept()
    {
        // type STATUS, an unknown field 9 (varint), status 999.
        var decoded = HopMessage.Decode([0x08, 0x02, 0x48, 0x05, 0x28, 0xe7, 0x07]);
        Assert.Equal(HopType.Status, decoded.Type);
        Assert.Equal((RelayStatus)999, decoded.Status);
    }

    public static TheoryData<string, byte[]> Hostile => new()
    {
        { "no type", [0x28, 0x64] },
        { "unknown type", [0x08, 0x07] },
        { "length past the end", [0x08, 0x01, 0x12, 0x7f, 0x0a] },
        { "peer id not a peer id", [0x08, 0x01, 0x12, 0x04, 0x0a, 0x02, 0x00, 0x01] },
        { "peer without id", [0x08, 0x01, 0x12, 0x00] },
        { "truncated varint", [0x08, 0x80] },
        { "status beyond int", [0x08, 0x02, 0x28, 0xff, 0xff, 0xff, 0xff, 0x0f] },
        { "over 4 KiB", [0x08, 0x00, 0x4a, 0x80, 0x20, .. new byte[4096]] },
    };

    [Theory]
    [MemberData(nameof(Hostile))]
    public void Hostile_hop_messages_are_protocol_errors(string what, byte[] bytes)
    {
        var error = Assert.Throws<SecureMeshException>(() => HopMessage.Decode(bytes));
        Assert.True(error.Kind == SecureMeshErrorKind.Protocol, what);
    }

    [Fact]
    public void More_addresses_than_the_cap_are_refused()
    {
        var addr = new byte[] { 0x04, 10, 0, 0, 1, 0x06, 0x12, 0x8B };
        var w = new List<byte> { 0x08, 0x64 };
        for (var i = 0; i <= HolePunchMessage.MaxAddrs; i++)
        {
            w.AddRange([0x12, (byte)addr.Length, .. addr]);
        }
        Assert.Equal(SecureMeshErrorKind.Protocol, Assert.Throws<SecureMeshException>(() => HolePunchMessage.Decode(w.ToArray())).Kind);
    }

    [Fact]
    public async Task A_length_prefix_over_4_KiB_is_refused_before_reading_the_body()
    {
        // 0x80 0x80 0x01 = 16 KiB, and no body at all: the reader must refuse on the prefix alone.
        using var stream = new MemoryStream([0x80, 0x80, 0x01]);
        var error = await Assert.ThrowsAsync<SecureMeshException>(() => CircuitRelay.ReadHopAsync(stream, CancellationToken.None));
        Assert.Equal(SecureMeshErrorKind.Protocol, error.Kind);
    }

    [Fact]
    public void Hole_punch_types_are_the_spec_numbers()
    {
        Assert.Equal(new byte[] { 0x08, 0x64 }, new HolePunchMessage(HolePunchType.Connect, []).Encode());
        Assert.Equal(new byte[] { 0x08, 0xac, 0x02 }, new HolePunchMessage(HolePunchType.Sync, []).Encode());
        Assert.Equal(SecureMeshErrorKind.Protocol, Assert.Throws<SecureMeshException>(() => HolePunchMessage.Decode([0x08, 0x01])).Kind);
    }
}
