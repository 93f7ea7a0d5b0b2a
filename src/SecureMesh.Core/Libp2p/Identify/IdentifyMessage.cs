using System.Text;
using SecureMesh.Core.Noise;
using SecureMesh.Core.Wire;

namespace SecureMesh.Core.Libp2p.Identify;

/// <summary>
/// The libp2p identify message (identify/README.md):
/// <code>
/// message Identify { optional string protocolVersion = 5; optional string agentVersion = 6; optional bytes publicKey = 1;
///   repeated bytes listenAddrs = 2; optional bytes observedAddr = 4; repeated string protocols = 3; optional bytes signedPeerRecord = 8; }
/// </code>
/// Addresses stay raw multiaddr bytes here; the signed peer record is kept as received and not checked.
/// </summary>
public sealed record IdentifyMessage
{
    /// <summary>Largest message read or written (go-libp2p and js-libp2p use the same bound).</summary>
    public const int MaxSize = 8 * 1024;

    /// <summary>Listen addresses accepted from a peer (after merging its messages).</summary>
    public const int MaxListenAddrs = 128;

    /// <summary>Protocols accepted from a peer (after merging its messages).</summary>
    public const int MaxProtocols = 512;

    /// <summary>Longest single address in bytes.</summary>
    public const int MaxAddrLength = 1024;

    /// <summary>Longest string (a version, a protocol ID) in bytes.</summary>
    public const int MaxStringLength = 1024;

    /// <summary>E.g. <c>ipfs/0.1.0</c>.</summary>
    public string? ProtocolVersion { get; init; }

    /// <summary>E.g. <c>securemesh/1.2.3</c>; free text from the peer, to be escaped before it is shown.</summary>
    public string? AgentVersion { get; init; }

    /// <summary>The protobuf-encoded libp2p public key.</summary>
    public byte[]? PublicKey { get; init; }

    /// <summary>Listen addresses, each a binary multiaddr.</summary>
    public IReadOnlyList<byte[]> ListenAddrs { get; init; } = [];

    /// <summary>The address the sender sees the receiver at, a binary multiaddr.</summary>
    public byte[]? ObservedAddr { get; init; }

    /// <summary>Protocol IDs the sender handles.</summary>
    public IReadOnlyList<string> Protocols { get; init; } = [];

    /// <summary>A signed peer record envelope, kept raw (not verified, not used).</summary>
    public byte[]? SignedPeerRecord { get; init; }

    /// <summary>Encodes the message; throws <see cref="SecureMeshException"/> (InvalidInput) when it exceeds <see cref="MaxSize"/>.</summary>
    public byte[] Encode()
    {
        using var output = new MemoryStream();
        if (PublicKey is { } key)
        {
            WriteBytes(output, 1, key);
        }
        foreach (var addr in ListenAddrs)
        {
            WriteBytes(output, 2, addr);
        }
        foreach (var protocol in Protocols)
        {
            WriteBytes(output, 3, Encoding.UTF8.GetBytes(protocol));
        }
        if (ObservedAddr is { } observed)
        {
            WriteBytes(output, 4, observed);
        }
        if (ProtocolVersion is { } protocolVersion)
        {
            WriteBytes(output, 5, Encoding.UTF8.GetBytes(protocolVersion));
        }
        if (AgentVersion is { } agentVersion)
        {
            WriteBytes(output, 6, Encoding.UTF8.GetBytes(agentVersion));
        }
        if (SignedPeerRecord is { } record)
        {
            WriteBytes(output, 8, record);
        }
        if (output.Length > MaxSize)
        {
            throw new SecureMeshException(SecureMeshErrorKind.InvalidInput, $"the identify message is {output.Length} bytes, over the {MaxSize}-byte limit");
        }
        return output.ToArray();
    }

    /// <summary>Parses a message from a peer; throws only <see cref="SecureMeshException"/> (Protocol) on bad input.</summary>
    public static IdentifyMessage Decode(ReadOnlySpan<byte> data) => DecodeInto(data, null);

    /// <summary>
    /// Parses <paramref name="data"/> over <paramref name="previous"/> as protobuf merges messages: a field present here
    /// replaces a single one, repeated ones are appended (protocols without duplicates). The caps apply to the result.
    /// </summary>
    internal static IdentifyMessage DecodeInto(ReadOnlySpan<byte> data, IdentifyMessage? previous)
    {
        if (data.Length > MaxSize)
        {
            throw Malformed($"longer than {MaxSize} bytes");
        }
        var reader = new ProtobufReader(data, What);
        string? protocolVersion = previous?.ProtocolVersion;
        string? agentVersion = previous?.AgentVersion;
        var publicKey = previous?.PublicKey;
        var observed = previous?.ObservedAddr;
        var record = previous?.SignedPeerRecord;
        var addrs = new List<byte[]>(previous?.ListenAddrs ?? []);
        var protocols = new List<string>(previous?.Protocols ?? []);
        var seen = new HashSet<string>(protocols, StringComparer.Ordinal);
        while (reader.TryReadTag(out var field, out var wireType))
        {
            if (wireType != ProtobufReader.WireTypeLengthDelimited || field is not (1 or 2 or 3 or 4 or 5 or 6 or 8))
            {
                reader.SkipField(wireType);
                continue;
            }
            var value = reader.ReadBytes();
            switch (field)
            {
                case 1:
                    publicKey = value.ToArray();
                    break;
                case 2:
                    if (value.Length > MaxAddrLength)
                    {
                        throw Malformed($"a listen address is longer than {MaxAddrLength} bytes");
                    }
                    if (addrs.Count >= MaxListenAddrs)
                    {
                        throw Malformed($"more than {MaxListenAddrs} listen addresses");
                    }
                    addrs.Add(value.ToArray());
                    break;
                case 3:
                    var protocol = Text(value);
                    if (seen.Add(protocol))
                    {
                        if (protocols.Count >= MaxProtocols)
                        {
                            throw Malformed($"more than {MaxProtocols} protocols");
                        }
                        protocols.Add(protocol);
                    }
                    break;
                case 4:
                    if (value.Length > MaxAddrLength)
                    {
                        throw Malformed($"the observed address is longer than {MaxAddrLength} bytes");
                    }
                    observed = value.ToArray();
                    break;
                case 5:
                    protocolVersion = Text(value);
                    break;
                case 6:
                    agentVersion = Text(value);
                    break;
                default:
                    record = value.ToArray();
                    break;
            }
        }
        return new IdentifyMessage
        {
            ProtocolVersion = protocolVersion,
            AgentVersion = agentVersion,
            PublicKey = publicKey,
            ListenAddrs = addrs,
            ObservedAddr = observed,
            Protocols = protocols,
            SignedPeerRecord = record,
        };
    }

    private const string What = "identify message";

    private static string Text(ReadOnlySpan<byte> value)
    {
        if (value.Length > MaxStringLength)
        {
            throw Malformed($"a string is longer than {MaxStringLength} bytes");
        }
        return ProtobufReader.DecodeUtf8(value, What);
    }

    private static SecureMeshException Malformed(string reason) => ProtobufReader.Malformed(What, reason);

    private static void WriteBytes(MemoryStream stream, int field, ReadOnlySpan<byte> value)
    {
        Span<byte> scratch = stackalloc byte[Varint.MaxLength64];
        stream.Write(scratch[..Varint.Write(scratch, ((ulong)field << 3) | ProtobufReader.WireTypeLengthDelimited)]);
        stream.Write(scratch[..Varint.Write(scratch, (ulong)value.Length)]);
        stream.Write(value);
    }
}
