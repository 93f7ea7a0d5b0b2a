using System.Buffers.Binary;
using System.Diagnostics.CodeAnalysis;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;
using SecureMesh.Core.Identity;
using SecureMesh.Core.Wire;

namespace SecureMesh.Core.Addressing;

// Multiaddr, from the multiformats spec (multiformats/multiaddr README.md and protocols.csv) and libp2p's
// addressing/README.md. Only the protocols SecureMesh dials are known; anything else is refused, never skipped (a
// binary multiaddr cannot be walked past a code whose value size is unknown).
//
// binary    = component+
// component = uvarint code | value
// value     = fixed: exactly size bytes | variable: uvarint length | length bytes | none
//
//   code  name         value                      text
//   4     ip4          4 bytes                    dotted quad, no leading zeros
//   6     tcp          2 bytes, big-endian        0..65535, decimal
//   41    ip6          16 bytes                   RFC 4291 text, no zone
//   53    dns          variable, a DNS name       letters, digits, '-', '_', labels of 1..63, at most 253 bytes
//   54    dns4         as dns                     (resolve to IPv4 only)
//   55    dns6         as dns                     (resolve to IPv6 only)
//   290   p2p-circuit  none
//   421   p2p          variable, a multihash      base58btc of the multihash (alias: ipfs)
//
// Every length and count is checked against its cap and against the bytes left before anything is allocated.

/// <summary>The protocols a <see cref="Multiaddr"/> may hold, by their multicodec code.</summary>
public enum MultiaddrProtocol
{
    /// <summary>An IPv4 address.</summary>
    Ip4 = 4,
    /// <summary>A TCP port.</summary>
    Tcp = 6,
    /// <summary>An IPv6 address.</summary>
    Ip6 = 41,
    /// <summary>A DNS name resolved to IPv4 and IPv6 addresses.</summary>
    Dns = 53,
    /// <summary>A DNS name resolved to IPv4 addresses only.</summary>
    Dns4 = 54,
    /// <summary>A DNS name resolved to IPv6 addresses only.</summary>
    Dns6 = 55,
    /// <summary>A relayed connection through the peer named before it.</summary>
    P2pCircuit = 290,
    /// <summary>A peer, by the multihash of its Peer ID.</summary>
    P2p = 421,
}

/// <summary>One protocol and its value in a <see cref="Multiaddr"/>.</summary>
public sealed class MultiaddrComponent : IEquatable<MultiaddrComponent>
{
    private readonly byte[] _value;

    internal MultiaddrComponent(MultiaddrProtocol protocol, byte[] value, string? text)
    {
        Protocol = protocol;
        _value = value;
        Text = text;
    }

    /// <summary>The protocol.</summary>
    public MultiaddrProtocol Protocol { get; }

    /// <summary>The protocol's text name (<c>ip4</c>, <c>p2p-circuit</c>, …).</summary>
    public string Name => Multiaddr.NameOf(Protocol);

    /// <summary>The value in its binary form (empty for <c>p2p-circuit</c>).</summary>
    public ReadOnlySpan<byte> Value => _value;

    /// <summary>The value in its text form, or null for a protocol without one.</summary>
    public string? Text { get; }

    /// <inheritdoc/>
    public bool Equals(MultiaddrComponent? other) =>
        other is not null && other.Protocol == Protocol && other._value.AsSpan().SequenceEqual(_value);

    /// <inheritdoc/>
    public override bool Equals(object? obj) => Equals(obj as MultiaddrComponent);

    /// <inheritdoc/>
    public override int GetHashCode() => HashCode.Combine(Protocol, _value.Length);

    /// <inheritdoc/>
    public override string ToString() => Text is null ? "/" + Name : $"/{Name}/{Text}";
}

/// <summary>
/// A multiaddr (<c>/ip4/192.0.2.7/tcp/4747/p2p/12D3KooW…</c>): parsed strictly from text or from its binary form,
/// formatted back to either. Text that does not parse is an <see cref="SecureMeshErrorKind.InvalidInput"/> error with
/// the reason; bytes that do not parse are a <see cref="SecureMeshErrorKind.Protocol"/> error. Immutable.
/// </summary>
public sealed class Multiaddr : IEquatable<Multiaddr>
{
    /// <summary>Longest text form accepted.</summary>
    public const int MaxTextLength = 1024;

    /// <summary>Longest binary form accepted.</summary>
    public const int MaxBinaryLength = 1024;

    /// <summary>Most components in one multiaddr.</summary>
    public const int MaxComponents = 16;

    /// <summary>Longest DNS name, in bytes (RFC 1035).</summary>
    public const int MaxDnsNameLength = 253;

    /// <summary>Longest multihash in a <c>/p2p</c> component.</summary>
    public const int MaxMultihashLength = 128;

    private readonly MultiaddrComponent[] _components;
    private readonly byte[] _bytes;
    private readonly string _text;

    private Multiaddr(MultiaddrComponent[] components)
    {
        _components = components;
        var length = 0;
        var text = new StringBuilder();
        foreach (var c in components)
        {
            length += Varint.Size((ulong)c.Protocol) + c.Value.Length
                + (SizeOf(c.Protocol) < 0 ? Varint.Size((ulong)c.Value.Length) : 0);
            text.Append(c);
        }
        _bytes = new byte[length];
        var at = 0;
        foreach (var c in components)
        {
            at += Varint.Write(_bytes.AsSpan(at), (ulong)c.Protocol);
            if (SizeOf(c.Protocol) < 0)
            {
                at += Varint.Write(_bytes.AsSpan(at), (ulong)c.Value.Length);
            }
            c.Value.CopyTo(_bytes.AsSpan(at));
            at += c.Value.Length;
        }
        _text = text.ToString();
    }

    /// <summary>The components, outermost first.</summary>
    public IReadOnlyList<MultiaddrComponent> Components => _components;

    /// <summary>The binary form.</summary>
    public ReadOnlySpan<byte> Bytes => _bytes;

    /// <summary>A copy of the binary form.</summary>
    public byte[] ToBytes() => (byte[])_bytes.Clone();

    /// <summary>The canonical text form.</summary>
    public override string ToString() => _text;

    /// <summary>
    /// The peer named by the last <c>/p2p</c> component when it is an Ed25519 Peer ID (the only kind SecureMesh
    /// speaks to); null when there is none. A <c>/p2p</c> holding another kind of key is <paramref name="other"/> true.
    /// </summary>
    public PeerId? LastPeerId(out bool other)
    {
        other = false;
        for (var i = _components.Length - 1; i >= 0; i--)
        {
            if (_components[i].Protocol == MultiaddrProtocol.P2p)
            {
                var text = _components[i].Text!;
                if (PeerId.TryParse(text, out var id))
                {
                    return id;
                }
                other = true;
                return null;
            }
        }
        return null;
    }

    /// <summary>The multiaddr of a TCP endpoint, optionally ending in <c>/p2p/</c><paramref name="peer"/>.</summary>
    public static Multiaddr FromEndPoint(IPEndPoint endPoint, PeerId? peer = null)
    {
        ArgumentNullException.ThrowIfNull(endPoint);
        var address = endPoint.Address.IsIPv4MappedToIPv6 ? endPoint.Address.MapToIPv4() : endPoint.Address;
        var ip = address.AddressFamily == AddressFamily.InterNetwork
            ? new MultiaddrComponent(MultiaddrProtocol.Ip4, address.GetAddressBytes(), address.ToString())
            : new MultiaddrComponent(MultiaddrProtocol.Ip6, address.GetAddressBytes(), new IPAddress(address.GetAddressBytes()).ToString());
        var port = new byte[2];
        BinaryPrimitives.WriteUInt16BigEndian(port, (ushort)endPoint.Port);
        var list = new List<MultiaddrComponent> { ip, new(MultiaddrProtocol.Tcp, port, endPoint.Port.ToString(CultureInfo.InvariantCulture)) };
        if (peer is not null)
        {
            list.Add(new MultiaddrComponent(MultiaddrProtocol.P2p, peer.ToBytes(), peer.Text));
        }
        return new Multiaddr([.. list]);
    }

    /// <summary>Parses the text form; throws <see cref="SecureMeshException"/> (InvalidInput) with the reason.</summary>
    public static Multiaddr Parse(string? text) =>
        TryParse(text, out var result, out var error)
            ? result
            : throw new SecureMeshException(SecureMeshErrorKind.InvalidInput, error);

    /// <summary>Parses the text form.</summary>
    public static bool TryParse(string? text, [NotNullWhen(true)] out Multiaddr? result) => TryParse(text, out result, out _);

    /// <summary>Parses the text form, giving the reason on failure.</summary>
    public static bool TryParse(string? text, [NotNullWhen(true)] out Multiaddr? result, out string error)
    {
        result = null;
        if (string.IsNullOrEmpty(text))
        {
            error = "invalid multiaddr: empty";
            return false;
        }
        var shown = Shown(text);
        if (text.Length > MaxTextLength)
        {
            error = $"invalid multiaddr {shown}: longer than {MaxTextLength} characters";
            return false;
        }
        if (text[0] != '/')
        {
            error = $"invalid multiaddr {shown}: must start with '/', e.g. /ip4/192.0.2.7/tcp/4747";
            return false;
        }
        var parts = text.Split('/');
        var components = new List<MultiaddrComponent>();
        var i = 1;
        while (i < parts.Length)
        {
            var name = parts[i];
            if (name.Length == 0)
            {
                error = $"invalid multiaddr {shown}: empty component (a doubled or trailing '/')";
                return false;
            }
            if (!TryProtocolByName(name, out var protocol))
            {
                error = $"invalid multiaddr {shown}: unknown protocol '{Shown(name, 20, quote: false)}' (known: ip4, ip6, dns, dns4, dns6, tcp, p2p, p2p-circuit)";
                return false;
            }
            if (components.Count == MaxComponents)
            {
                error = $"invalid multiaddr {shown}: more than {MaxComponents} components";
                return false;
            }
            i++;
            if (SizeOf(protocol) == 0)
            {
                components.Add(new MultiaddrComponent(protocol, [], null));
                continue;
            }
            if (i >= parts.Length || parts[i].Length == 0)
            {
                error = $"invalid multiaddr {shown}: /{NameOf(protocol)} needs a value";
                return false;
            }
            if (!TryValueFromText(protocol, parts[i], out var component, out var why))
            {
                error = $"invalid multiaddr {shown}: /{NameOf(protocol)}: {why}";
                return false;
            }
            components.Add(component);
            i++;
        }
        if (components.Count == 0)
        {
            error = $"invalid multiaddr {shown}: no components";
            return false;
        }
        result = new Multiaddr([.. components]);
        error = string.Empty;
        return true;
    }

    /// <summary>Parses the binary form; throws <see cref="SecureMeshException"/> (Protocol) with the reason.</summary>
    public static Multiaddr FromBytes(ReadOnlySpan<byte> bytes) =>
        TryFromBytes(bytes, out var result, out var error)
            ? result
            : throw new SecureMeshException(SecureMeshErrorKind.Protocol, error);

    /// <summary>Parses the binary form, giving the reason on failure.</summary>
    public static bool TryFromBytes(ReadOnlySpan<byte> bytes, [NotNullWhen(true)] out Multiaddr? result, out string error)
    {
        result = null;
        if (bytes.Length == 0)
        {
            error = "invalid binary multiaddr: empty";
            return false;
        }
        if (bytes.Length > MaxBinaryLength)
        {
            error = $"invalid binary multiaddr: {bytes.Length} bytes, over the {MaxBinaryLength}-byte cap";
            return false;
        }
        var components = new List<MultiaddrComponent>();
        var at = 0;
        while (at < bytes.Length)
        {
            if (components.Count == MaxComponents)
            {
                error = $"invalid binary multiaddr: more than {MaxComponents} components";
                return false;
            }
            if (!ReadVarint(bytes[at..], out var code, out var n, out var why))
            {
                error = $"invalid binary multiaddr: protocol code at byte {at}: {why}";
                return false;
            }
            if (code > int.MaxValue || !Enum.IsDefined((MultiaddrProtocol)(int)code))
            {
                error = $"invalid binary multiaddr: unknown protocol code {code} at byte {at}";
                return false;
            }
            var protocol = (MultiaddrProtocol)(int)code;
            at += n;
            var size = SizeOf(protocol);
            int length;
            if (size >= 0)
            {
                length = size;
            }
            else
            {
                if (!ReadVarint(bytes[at..], out var announced, out n, out why))
                {
                    error = $"invalid binary multiaddr: /{NameOf(protocol)} length at byte {at}: {why}";
                    return false;
                }
                at += n;
                var cap = protocol == MultiaddrProtocol.P2p ? MaxMultihashLength : MaxDnsNameLength;
                if (announced == 0 || announced > (ulong)cap)
                {
                    error = $"invalid binary multiaddr: /{NameOf(protocol)} value of {announced} bytes (must be 1..{cap})";
                    return false;
                }
                length = (int)announced;
            }
            if (length > bytes.Length - at)
            {
                error = $"invalid binary multiaddr: /{NameOf(protocol)} needs {length} bytes, {bytes.Length - at} left";
                return false;
            }
            if (!TryValueFromBytes(protocol, bytes.Slice(at, length), out var component, out why))
            {
                error = $"invalid binary multiaddr: /{NameOf(protocol)}: {why}";
                return false;
            }
            components.Add(component);
            at += length;
        }
        result = new Multiaddr([.. components]);
        error = string.Empty;
        return true;
    }

    /// <summary>The text name of <paramref name="protocol"/>.</summary>
    public static string NameOf(MultiaddrProtocol protocol) => protocol switch
    {
        MultiaddrProtocol.Ip4 => "ip4",
        MultiaddrProtocol.Tcp => "tcp",
        MultiaddrProtocol.Ip6 => "ip6",
        MultiaddrProtocol.Dns => "dns",
        MultiaddrProtocol.Dns4 => "dns4",
        MultiaddrProtocol.Dns6 => "dns6",
        MultiaddrProtocol.P2pCircuit => "p2p-circuit",
        MultiaddrProtocol.P2p => "p2p",
        _ => throw new ArgumentOutOfRangeException(nameof(protocol)),
    };

    /// <summary>Bytes of a fixed-size value, -1 for a length-prefixed one, 0 for none.</summary>
    private static int SizeOf(MultiaddrProtocol protocol) => protocol switch
    {
        MultiaddrProtocol.Ip4 => 4,
        MultiaddrProtocol.Tcp => 2,
        MultiaddrProtocol.Ip6 => 16,
        MultiaddrProtocol.P2pCircuit => 0,
        _ => -1,
    };

    private static bool TryProtocolByName(string name, out MultiaddrProtocol protocol)
    {
        protocol = name switch
        {
            "ip4" => MultiaddrProtocol.Ip4,
            "tcp" => MultiaddrProtocol.Tcp,
            "ip6" => MultiaddrProtocol.Ip6,
            "dns" => MultiaddrProtocol.Dns,
            "dns4" => MultiaddrProtocol.Dns4,
            "dns6" => MultiaddrProtocol.Dns6,
            "p2p-circuit" => MultiaddrProtocol.P2pCircuit,
            // "ipfs" is the older name of the same code; it is written back as p2p.
            "p2p" or "ipfs" => MultiaddrProtocol.P2p,
            _ => 0,
        };
        return protocol != 0;
    }

    private static bool TryValueFromText(MultiaddrProtocol protocol, string text, [NotNullWhen(true)] out MultiaddrComponent? component, out string error)
    {
        component = null;
        error = string.Empty;
        switch (protocol)
        {
            case MultiaddrProtocol.Ip4:
                if (!TryParseIPv4(text, out var v4))
                {
                    error = $"{Shown(text)} is not a dotted-quad IPv4 address";
                    return false;
                }
                return TryValueFromBytes(protocol, v4, out component, out error);
            case MultiaddrProtocol.Ip6:
                if (text.Length > 45 || !text.All(c => char.IsAsciiHexDigit(c) || c is ':' or '.')
                    || !IPAddress.TryParse(text, out var v6) || v6.AddressFamily != AddressFamily.InterNetworkV6)
                {
                    error = $"{Shown(text)} is not an IPv6 address (no zone, no brackets)";
                    return false;
                }
                return TryValueFromBytes(protocol, v6.GetAddressBytes(), out component, out error);
            case MultiaddrProtocol.Tcp:
                if (text.Length > 5 || !text.All(char.IsAsciiDigit) || (text.Length > 1 && text[0] == '0')
                    || !int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var port) || port > 65535)
                {
                    error = $"{Shown(text)} is not a port: expected a number from 0 to 65535 without leading zeros";
                    return false;
                }
                var bytes = new byte[2];
                BinaryPrimitives.WriteUInt16BigEndian(bytes, (ushort)port);
                return TryValueFromBytes(protocol, bytes, out component, out error);
            case MultiaddrProtocol.Dns or MultiaddrProtocol.Dns4 or MultiaddrProtocol.Dns6:
                if (!IsDnsName(text, out error))
                {
                    return false;
                }
                return TryValueFromBytes(protocol, Encoding.ASCII.GetBytes(text), out component, out error);
            case MultiaddrProtocol.P2p:
                if (text.Length > Base58.MaxEncodedLength || !Base58.TryDecode(text, out var multihash))
                {
                    error = $"{Shown(text)} is not a base58btc Peer ID";
                    return false;
                }
                if (multihash.Length > MaxMultihashLength)
                {
                    error = $"Peer ID of {multihash.Length} bytes, over the {MaxMultihashLength}-byte cap";
                    return false;
                }
                return TryValueFromBytes(protocol, multihash, out component, out error);
            default:
                error = "takes no value";
                return false;
        }
    }

    private static bool TryValueFromBytes(MultiaddrProtocol protocol, ReadOnlySpan<byte> value, [NotNullWhen(true)] out MultiaddrComponent? component, out string error)
    {
        component = null;
        error = string.Empty;
        string text;
        switch (protocol)
        {
            case MultiaddrProtocol.Ip4:
                text = new IPAddress(value).ToString();
                break;
            case MultiaddrProtocol.Ip6:
                text = new IPAddress(value).ToString();
                break;
            case MultiaddrProtocol.Tcp:
                text = BinaryPrimitives.ReadUInt16BigEndian(value).ToString(CultureInfo.InvariantCulture);
                break;
            case MultiaddrProtocol.Dns or MultiaddrProtocol.Dns4 or MultiaddrProtocol.Dns6:
                foreach (var b in value)
                {
                    if (b >= 0x80)
                    {
                        error = "a DNS name must be ASCII (write international names in their xn-- form)";
                        return false;
                    }
                }
                text = Encoding.ASCII.GetString(value);
                if (!IsDnsName(text, out error))
                {
                    return false;
                }
                break;
            case MultiaddrProtocol.P2p:
                if (!IsMultihash(value, out error))
                {
                    return false;
                }
                text = Base58.Encode(value);
                break;
            default:
                text = string.Empty;
                break;
        }
        component = new MultiaddrComponent(protocol, value.ToArray(), protocol == MultiaddrProtocol.P2pCircuit ? null : text);
        return true;
    }

    /// <summary>Strict dotted quad: four decimal numbers 0..255, no leading zeros, nothing else.</summary>
    private static bool TryParseIPv4(string text, out byte[] bytes)
    {
        bytes = new byte[4];
        var parts = text.Split('.');
        if (parts.Length != 4)
        {
            return false;
        }
        for (var i = 0; i < 4; i++)
        {
            var p = parts[i];
            if (p.Length is 0 or > 3 || !p.All(char.IsAsciiDigit) || (p.Length > 1 && p[0] == '0'))
            {
                return false;
            }
            var n = int.Parse(p, NumberStyles.None, CultureInfo.InvariantCulture);
            if (n > 255)
            {
                return false;
            }
            bytes[i] = (byte)n;
        }
        return true;
    }

    /// <summary>ASCII letters, digits, '-' and '_', in dot-separated labels of 1..63, at most 253 in all.</summary>
    internal static bool IsDnsName(string text, out string error)
    {
        if (text.Length is 0 or > MaxDnsNameLength)
        {
            error = $"a DNS name has 1 to {MaxDnsNameLength} characters";
            return false;
        }
        var label = 0;
        foreach (var c in text)
        {
            if (c == '.')
            {
                if (label == 0)
                {
                    error = $"{Shown(text)} has an empty label";
                    return false;
                }
                label = 0;
                continue;
            }
            if (!(char.IsAsciiLetterOrDigit(c) || c is '-' or '_'))
            {
                error = $"{Shown(text)} is not a DNS name (letters, digits, '-', '_' and dots only)";
                return false;
            }
            if (++label > 63)
            {
                error = $"{Shown(text)} has a label longer than 63 characters";
                return false;
            }
        }
        if (label == 0)
        {
            error = $"{Shown(text)} ends with a dot";
            return false;
        }
        if (text[0] == '-')
        {
            error = $"{Shown(text)} starts with '-'";
            return false;
        }
        error = string.Empty;
        return true;
    }

    /// <summary>One multiformats unsigned varint; false with the reason when truncated, longer than 9 bytes or not minimal.</summary>
    private static bool ReadVarint(ReadOnlySpan<byte> input, out ulong value, out int length, out string error)
    {
        var status = Varint.Decode(input, Varint.MaxLength, out value, out length);
        error = status == VarintStatus.Ok ? string.Empty : Varint.Describe(status, Varint.MaxLength);
        return status == VarintStatus.Ok;
    }

    /// <summary>A multihash: uvarint code, uvarint digest length, and exactly that many digest bytes.</summary>
    private static bool IsMultihash(ReadOnlySpan<byte> value, out string error)
    {
        if (!ReadVarint(value, out _, out var n, out var why))
        {
            error = $"multihash code: {why}";
            return false;
        }
        if (!ReadVarint(value[n..], out var digest, out var m, out why))
        {
            error = $"multihash length: {why}";
            return false;
        }
        if (digest != (ulong)(value.Length - n - m))
        {
            error = $"multihash announces a {digest}-byte digest but holds {value.Length - n - m}";
            return false;
        }
        error = string.Empty;
        return true;
    }

    private static string Shown(string text, int max = 60, bool quote = true)
    {
        // Never echo control characters or a huge string back to a terminal.
        var clean = new string([.. text.Take(max).Select(c => char.IsControl(c) || char.IsSurrogate(c) || c is '\u2028' or '\u2029' ? '?' : c)]);
        var cut = text.Length > max ? clean + "…" : clean;
        return quote ? $"'{cut}'" : cut;
    }

    /// <inheritdoc/>
    public bool Equals(Multiaddr? other) => other is not null && other._bytes.AsSpan().SequenceEqual(_bytes);

    /// <inheritdoc/>
    public override bool Equals(object? obj) => Equals(obj as Multiaddr);

    /// <inheritdoc/>
    public override int GetHashCode()
    {
        var hash = new HashCode();
        hash.AddBytes(_bytes);
        return hash.ToHashCode();
    }
}
