using SecureMesh.Core.Identity;
using SecureMesh.Core.Noise;

namespace SecureMesh.Core.Libp2p.Relay;

/// <summary>Circuit relay v2's status codes (relay/circuit-v2.md).</summary>
public enum RelayStatus
{
    /// <summary>Not set (never sent).</summary>
    Unused = 0,
    /// <summary>Done.</summary>
    Ok = 100,
    /// <summary>The relay does not take this reservation.</summary>
    ReservationRefused = 200,
    /// <summary>Too many reservations or circuits.</summary>
    ResourceLimitExceeded = 201,
    /// <summary>The relay's access rules refuse it.</summary>
    PermissionDenied = 202,
    /// <summary>The relay could not reach the target, or the target refused.</summary>
    ConnectionFailed = 203,
    /// <summary>The target holds no reservation.</summary>
    NoReservation = 204,
    /// <summary>The message did not parse.</summary>
    MalformedMessage = 400,
    /// <summary>A message of the wrong type.</summary>
    UnexpectedMessage = 401,
}

/// <summary>The type of a <see cref="HopMessage"/>.</summary>
public enum HopType
{
    /// <summary>Reserve a slot on the relay.</summary>
    Reserve = 0,
    /// <summary>Open a circuit to a peer.</summary>
    Connect = 1,
    /// <summary>The relay's answer.</summary>
    Status = 2,
}

/// <summary>The type of a <see cref="StopMessage"/>.</summary>
public enum StopType
{
    /// <summary>The relay brings a circuit from a peer.</summary>
    Connect = 0,
    /// <summary>The target's answer.</summary>
    Status = 1,
}

/// <summary><c>Peer { required bytes id = 1; repeated bytes addrs = 2; }</c>: the id as the binary Peer ID.</summary>
public sealed record RelayPeer(PeerId Id, IReadOnlyList<byte[]> Addrs)
{
    /// <summary>A peer named by its ID alone.</summary>
    public RelayPeer(PeerId id)
        : this(id, [])
    {
    }
}

/// <summary><c>Reservation { uint64 expire = 1; repeated bytes addrs = 2; bytes voucher = 3; }</c>.</summary>
public sealed record RelayReservation(ulong Expire, IReadOnlyList<byte[]> Addrs, byte[]? Voucher);

/// <summary><c>Limit { uint32 duration = 1; uint64 data = 2; }</c>: seconds and bytes per direction, 0 for none.</summary>
public sealed record RelayLimit(uint Duration, ulong Data)
{
    /// <summary>No limit at all (sent as an absent limit field).</summary>
    public bool IsUnlimited => Duration == 0 && Data == 0;
}

/// <summary>A message of the hop protocol, between a client and the relay.</summary>
public sealed record HopMessage(HopType Type)
{
    /// <summary>The target (CONNECT) or, from the relay on a stop stream, the initiator.</summary>
    public RelayPeer? Peer { get; init; }

    /// <summary>The reservation granted (STATUS after RESERVE).</summary>
    public RelayReservation? Reservation { get; init; }

    /// <summary>The limits applied to circuits; null for none.</summary>
    public RelayLimit? Limit { get; init; }

    /// <summary>The outcome (STATUS).</summary>
    public RelayStatus? Status { get; init; }

    /// <summary>The canonical encoding (fields in number order).</summary>
    public byte[] Encode() => RelayCodec.Encode((int)Type, Peer, Reservation, Limit, Status, RelayCodec.HopFields);

    /// <summary>Parses a message from a peer; throws only <see cref="SecureMeshException"/> (Protocol).</summary>
    public static HopMessage Decode(ReadOnlySpan<byte> data)
    {
        var f = RelayCodec.Decode(data, "hop message", (int)HopType.Status, RelayCodec.HopFields);
        return new HopMessage((HopType)f.Type) { Peer = f.Peer, Reservation = f.Reservation, Limit = f.Limit, Status = f.Status };
    }
}

/// <summary>A message of the stop protocol, between the relay and the target of a circuit.</summary>
public sealed record StopMessage(StopType Type)
{
    /// <summary>The initiator of the circuit (CONNECT).</summary>
    public RelayPeer? Peer { get; init; }

    /// <summary>The limits the relay applies to this circuit; null for none.</summary>
    public RelayLimit? Limit { get; init; }

    /// <summary>The outcome (STATUS).</summary>
    public RelayStatus? Status { get; init; }

    /// <summary>The canonical encoding (fields in number order).</summary>
    public byte[] Encode() => RelayCodec.Encode((int)Type, Peer, null, Limit, Status, RelayCodec.StopFields);

    /// <summary>Parses a message from a peer; throws only <see cref="SecureMeshException"/> (Protocol).</summary>
    public static StopMessage Decode(ReadOnlySpan<byte> data)
    {
        var f = RelayCodec.Decode(data, "stop message", (int)StopType.Status, RelayCodec.StopFields);
        return new StopMessage((StopType)f.Type) { Peer = f.Peer, Limit = f.Limit, Status = f.Status };
    }
}

/// <summary>The nested messages' encoding and the caps checked before anything is kept.</summary>
internal static class RelayCodec
{
    /// <summary>Addresses kept from one peer or reservation.</summary>
    public const int MaxAddrs = 32;

    /// <summary>Where hop and stop put their fields (0: the message has no such field); the type is field 1 in both.</summary>
    internal readonly record struct FieldNumbers(int Peer, int Reservation, int Limit, int Status);

    internal readonly record struct Fields(int Type, RelayPeer? Peer, RelayReservation? Reservation, RelayLimit? Limit, RelayStatus? Status);

    public static FieldNumbers HopFields { get; } = new(2, 3, 4, 5);

    public static FieldNumbers StopFields { get; } = new(2, 0, 3, 4);

    /// <summary>The canonical encoding of a hop or stop message; an absent or zero limit is left out (no limit).</summary>
    public static byte[] Encode(int type, RelayPeer? peer, RelayReservation? reservation, RelayLimit? limit, RelayStatus? status, FieldNumbers at)
    {
        var w = new ProtobufWriter().Varint(1, (ulong)type);
        if (peer is not null)
        {
            w.Bytes(at.Peer, EncodePeer(peer));
        }
        if (reservation is not null && at.Reservation != 0)
        {
            w.Bytes(at.Reservation, EncodeReservation(reservation));
        }
        if (limit is { IsUnlimited: false })
        {
            w.Bytes(at.Limit, EncodeLimit(limit));
        }
        if (status is { } s)
        {
            w.Varint(at.Status, (ulong)s);
        }
        return Checked(w);
    }

    /// <summary>Parses a hop or stop message: the caps, a known type (at most <paramref name="maxType"/>), nested messages checked.</summary>
    public static Fields Decode(ReadOnlySpan<byte> data, string what, int maxType, FieldNumbers at)
    {
        CheckSize(data, what);
        var reader = new ProtobufReader(data, what);
        int? type = null;
        RelayPeer? peer = null;
        RelayReservation? reservation = null;
        RelayLimit? limit = null;
        RelayStatus? status = null;
        while (reader.TryReadTag(out var field, out var wire))
        {
            if (field == 1 && wire == ProtobufReader.WireTypeVarint)
            {
                var raw = reader.ReadVarint();
                type = raw <= (ulong)maxType ? (int)raw : throw ProtobufReader.Malformed(what, $"unknown type {raw}");
            }
            else if (field == at.Peer && wire == ProtobufReader.WireTypeLengthDelimited)
            {
                peer = DecodePeer(reader.ReadBytes());
            }
            else if (field == at.Reservation && wire == ProtobufReader.WireTypeLengthDelimited)
            {
                reservation = DecodeReservation(reader.ReadBytes());
            }
            else if (field == at.Limit && wire == ProtobufReader.WireTypeLengthDelimited)
            {
                limit = DecodeLimit(reader.ReadBytes());
            }
            else if (field == at.Status && wire == ProtobufReader.WireTypeVarint)
            {
                status = ToStatus(reader.ReadVarint());
            }
            else
            {
                reader.SkipField(wire);
            }
        }
        return new Fields(type ?? throw ProtobufReader.Malformed(what, "no type"), peer, reservation, limit, status);
    }

    public static void CheckSize(ReadOnlySpan<byte> data, string what)
    {
        if (data.Length > CircuitRelay.MaxMessageSize)
        {
            throw ProtobufReader.Malformed(what, $"longer than {CircuitRelay.MaxMessageSize} bytes");
        }
    }

    public static byte[] Checked(ProtobufWriter w) =>
        w.Length <= CircuitRelay.MaxMessageSize
            ? w.ToArray()
            : throw new SecureMeshException(SecureMeshErrorKind.InvalidInput, $"a relay message of {w.Length} bytes is over the {CircuitRelay.MaxMessageSize}-byte limit");

    public static RelayStatus ToStatus(ulong raw) =>
        raw <= int.MaxValue ? (RelayStatus)(int)raw : throw ProtobufReader.Malformed("relay message", "status out of range");

    public static byte[] EncodePeer(RelayPeer peer)
    {
        var w = new ProtobufWriter().Bytes(1, peer.Id.ToBytes());
        foreach (var addr in peer.Addrs)
        {
            w.Bytes(2, addr);
        }
        return w.ToArray();
    }

    public static RelayPeer DecodePeer(ReadOnlySpan<byte> data)
    {
        var reader = new ProtobufReader(data, "relay peer");
        PeerId? id = null;
        var addrs = new List<byte[]>();
        while (reader.TryReadTag(out var field, out var wire))
        {
            switch (field, wire)
            {
                case (1, ProtobufReader.WireTypeLengthDelimited):
                    id = PeerIdFromBytes(reader.ReadBytes());
                    break;
                case (2, ProtobufReader.WireTypeLengthDelimited):
                    AddAddr(addrs, reader.ReadBytes());
                    break;
                default:
                    reader.SkipField(wire);
                    break;
            }
        }
        return new RelayPeer(id ?? throw ProtobufReader.Malformed("relay peer", "no id"), addrs);
    }

    public static byte[] EncodeReservation(RelayReservation reservation)
    {
        var w = new ProtobufWriter().Varint(1, reservation.Expire);
        foreach (var addr in reservation.Addrs)
        {
            w.Bytes(2, addr);
        }
        if (reservation.Voucher is { } voucher)
        {
            w.Bytes(3, voucher);
        }
        return w.ToArray();
    }

    public static RelayReservation DecodeReservation(ReadOnlySpan<byte> data)
    {
        var reader = new ProtobufReader(data, "reservation");
        ulong expire = 0;
        byte[]? voucher = null;
        var addrs = new List<byte[]>();
        while (reader.TryReadTag(out var field, out var wire))
        {
            switch (field, wire)
            {
                case (1, ProtobufReader.WireTypeVarint):
                    expire = reader.ReadVarint();
                    break;
                case (2, ProtobufReader.WireTypeLengthDelimited):
                    AddAddr(addrs, reader.ReadBytes());
                    break;
                case (3, ProtobufReader.WireTypeLengthDelimited):
                    voucher = reader.ReadBytes().ToArray();
                    break;
                default:
                    reader.SkipField(wire);
                    break;
            }
        }
        return new RelayReservation(expire, addrs, voucher);
    }

    public static byte[] EncodeLimit(RelayLimit limit)
    {
        var w = new ProtobufWriter();
        if (limit.Duration != 0)
        {
            w.Varint(1, limit.Duration);
        }
        if (limit.Data != 0)
        {
            w.Varint(2, limit.Data);
        }
        return w.ToArray();
    }

    public static RelayLimit DecodeLimit(ReadOnlySpan<byte> data)
    {
        var reader = new ProtobufReader(data, "relay limit");
        uint duration = 0;
        ulong bytes = 0;
        while (reader.TryReadTag(out var field, out var wire))
        {
            switch (field, wire)
            {
                case (1, ProtobufReader.WireTypeVarint):
                    var raw = reader.ReadVarint();
                    duration = raw <= uint.MaxValue ? (uint)raw : throw ProtobufReader.Malformed("relay limit", "duration out of range");
                    break;
                case (2, ProtobufReader.WireTypeVarint):
                    bytes = reader.ReadVarint();
                    break;
                default:
                    reader.SkipField(wire);
                    break;
            }
        }
        return new RelayLimit(duration, bytes);
    }

    /// <summary>A binary Peer ID (identity multihash of an Ed25519 key); anything else is malformed.</summary>
    public static PeerId PeerIdFromBytes(ReadOnlySpan<byte> bytes)
    {
        // 38 bytes: identity multihash (2) + protobuf key header (4) + Ed25519 key (32).
        if (bytes.Length != 38 || !PeerId.TryParse(Base58.Encode(bytes.ToArray()), out var id))
        {
            throw ProtobufReader.Malformed("relay peer", "the id is not an Ed25519 Peer ID");
        }
        return id;
    }

    private static void AddAddr(List<byte[]> addrs, ReadOnlySpan<byte> addr)
    {
        if (addr.Length > Addressing.Multiaddr.MaxBinaryLength)
        {
            throw ProtobufReader.Malformed("relay message", $"an address is longer than {Addressing.Multiaddr.MaxBinaryLength} bytes");
        }
        if (addrs.Count >= MaxAddrs)
        {
            throw ProtobufReader.Malformed("relay message", $"more than {MaxAddrs} addresses");
        }
        addrs.Add(addr.ToArray());
    }
}
