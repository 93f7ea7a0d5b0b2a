using System.Text;
using SecureMesh.Core.Identity;
using SecureMesh.Core.Noise;
using SecureMesh.Core.Wire;

namespace SecureMesh.Core.Libp2p;

/// <summary>
/// <c>/securemesh/addrs/1.0.0</c>, "where can this peer be reached?", between trusted peers. One request and one answer
/// per stream, each varint-length-prefixed protobuf: <c>message Where { string peer = 1; }</c> and
/// <c>message Addrs { repeated bytes addrs = 1; }</c> (binary multiaddrs). Counts and lengths are capped on both sides.
/// </summary>
public static class AddressExchangeMessages
{
    public const string ProtocolId = "/securemesh/addrs/1.0.0";

    /// <summary>Most addresses in an answer.</summary>
    public const int MaxAddrs = 16;

    /// <summary>Longest address in an answer.</summary>
    public const int MaxAddrLength = 256;

    private const int MaxRequest = 128;
    private const int MaxAnswer = MaxAddrs * (MaxAddrLength + 3);

    public static async Task WriteRequestAsync(Stream stream, PeerId peer, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(peer);
        var m = new List<byte>();
        WriteBytes(m, Encoding.ASCII.GetBytes(peer.Text));
        await LengthPrefixed.WriteAsync(stream, m.ToArray(), cancellationToken).ConfigureAwait(false);
    }

    /// <summary>The peer asked about; Protocol error for anything but one valid Peer ID.</summary>
    public static async Task<PeerId> ReadRequestAsync(Stream stream, CancellationToken cancellationToken)
    {
        var bytes = await LengthPrefixed.ReadAsync(stream, MaxRequest, "address request", cancellationToken).ConfigureAwait(false)
            ?? throw new SecureMeshException(SecureMeshErrorKind.Protocol, "the stream ended before the address request");
        var reader = new ProtobufReader(bytes, "address request");
        string? text = null;
        while (reader.TryReadTag(out var field, out var wireType))
        {
            if (field == 1 && wireType == ProtobufReader.WireTypeLengthDelimited)
            {
                text = ProtobufReader.DecodeUtf8(reader.ReadBytes(), "address request");
            }
            else
            {
                reader.SkipField(wireType);
            }
        }
        return PeerId.TryParse(text, out var peer, out var error)
            ? peer
            : throw new SecureMeshException(SecureMeshErrorKind.Protocol, $"malformed address request: {error}");
    }

    public static async Task WriteAnswerAsync(Stream stream, IReadOnlyList<byte[]> addrs, CancellationToken cancellationToken)
    {
        var m = new List<byte>();
        foreach (var addr in addrs.Where(a => a.Length <= MaxAddrLength).Take(MaxAddrs))
        {
            WriteBytes(m, addr);
        }
        await LengthPrefixed.WriteAsync(stream, m.ToArray(), cancellationToken).ConfigureAwait(false);
    }

    /// <summary>The binary multiaddrs of an answer (unchecked beyond the caps: the caller parses each).</summary>
    public static async Task<IReadOnlyList<byte[]>> ReadAnswerAsync(Stream stream, CancellationToken cancellationToken)
    {
        var bytes = await LengthPrefixed.ReadAsync(stream, MaxAnswer, "address answer", cancellationToken).ConfigureAwait(false)
            ?? throw new SecureMeshException(SecureMeshErrorKind.Protocol, "the stream ended before the address answer");
        var reader = new ProtobufReader(bytes, "address answer");
        var addrs = new List<byte[]>();
        while (reader.TryReadTag(out var field, out var wireType))
        {
            if (field != 1 || wireType != ProtobufReader.WireTypeLengthDelimited)
            {
                reader.SkipField(wireType);
                continue;
            }
            var addr = reader.ReadBytes();
            if (addr.Length > MaxAddrLength || addrs.Count >= MaxAddrs)
            {
                throw ProtobufReader.Malformed("address answer", $"more than {MaxAddrs} addresses or one longer than {MaxAddrLength} bytes");
            }
            addrs.Add(addr.ToArray());
        }
        return addrs;
    }

    private static void WriteBytes(List<byte> output, ReadOnlySpan<byte> value)
    {
        Span<byte> scratch = stackalloc byte[Varint.MaxLength64];
        output.Add((1 << 3) | ProtobufReader.WireTypeLengthDelimited);
        output.AddRange(scratch[..Varint.Write(scratch, (ulong)value.Length)]);
        output.AddRange(value);
    }
}
