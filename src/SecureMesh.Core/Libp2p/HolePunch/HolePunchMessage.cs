using SecureMesh.Core.Noise;

namespace SecureMesh.Core.Libp2p.HolePunch;

/// <summary>The type of a <see cref="HolePunchMessage"/>.</summary>
public enum HolePunchType
{
    /// <summary>Here are my addresses (both ways; the answer starts the round-trip measurement's end).</summary>
    Connect = 100,
    /// <summary>Dial now (from the initiator, after the answer).</summary>
    Sync = 300,
}

/// <summary>
/// DCUtR's one message (relay/DCUtR.md): <c>HolePunch { Type type = 1; repeated bytes ObsAddrs = 2; }</c>, each prefixed
/// by its varint length and at most <see cref="MaxSize"/> bytes, on <see cref="ProtocolId"/>.
/// </summary>
public sealed record HolePunchMessage(HolePunchType Type, IReadOnlyList<byte[]> ObservedAddrs)
{
    /// <summary>DCUtR's protocol ID.</summary>
    public const string ProtocolId = "/libp2p/dcutr";

    /// <summary>Largest message read or written (the spec's 4 KiB).</summary>
    public const int MaxSize = 4096;

    /// <summary>Addresses kept from one message.</summary>
    public const int MaxAddrs = 32;

    /// <summary>The canonical encoding.</summary>
    public byte[] Encode()
    {
        var w = new ProtobufWriter().Varint(1, (ulong)Type);
        foreach (var addr in ObservedAddrs)
        {
            w.Bytes(2, addr);
        }
        return w.Length <= MaxSize
            ? w.ToArray()
            : throw new SecureMeshException(SecureMeshErrorKind.InvalidInput, $"a hole punch message of {w.Length} bytes is over the {MaxSize}-byte limit");
    }

    /// <summary>Parses a message from a peer; throws only <see cref="SecureMeshException"/> (Protocol).</summary>
    public static HolePunchMessage Decode(ReadOnlySpan<byte> data)
    {
        const string What = "hole punch message";
        if (data.Length > MaxSize)
        {
            throw ProtobufReader.Malformed(What, $"longer than {MaxSize} bytes");
        }
        var reader = new ProtobufReader(data, What);
        HolePunchType? type = null;
        var addrs = new List<byte[]>();
        while (reader.TryReadTag(out var field, out var wire))
        {
            switch (field, wire)
            {
                case (1, ProtobufReader.WireTypeVarint):
                    type = reader.ReadVarint() switch
                    {
                        100 => HolePunchType.Connect,
                        300 => HolePunchType.Sync,
                        var other => throw ProtobufReader.Malformed(What, $"unknown type {other}"),
                    };
                    break;
                case (2, ProtobufReader.WireTypeLengthDelimited):
                    var addr = reader.ReadBytes();
                    if (addr.Length > Addressing.Multiaddr.MaxBinaryLength || addrs.Count >= MaxAddrs)
                    {
                        throw ProtobufReader.Malformed(What, $"more than {MaxAddrs} addresses or one too long");
                    }
                    addrs.Add(addr.ToArray());
                    break;
                default:
                    reader.SkipField(wire);
                    break;
            }
        }
        return new HolePunchMessage(type ?? throw ProtobufReader.Malformed(What, "no type"), addrs);
    }

    /// <summary>Reads one message; throws <see cref="SecureMeshException"/> (Protocol) on a malformed, oversized or missing one.</summary>
    public static async Task<HolePunchMessage> ReadAsync(Stream stream, CancellationToken cancellationToken)
    {
        var bytes = await LengthPrefixed.ReadAsync(stream, MaxSize, "hole punch message", cancellationToken).ConfigureAwait(false)
            ?? throw new SecureMeshException(SecureMeshErrorKind.Protocol, "the stream ended before a hole punch message");
        return Decode(bytes);
    }

    /// <summary>Writes the message and flushes.</summary>
    public ValueTask WriteAsync(Stream stream, CancellationToken cancellationToken) => LengthPrefixed.WriteAsync(stream, Encode(), cancellationToken);
}
