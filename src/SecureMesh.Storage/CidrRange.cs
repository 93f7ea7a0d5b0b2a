using System.Buffers.Binary;
using System.Diagnostics.CodeAnalysis;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using SecureMesh.Core;

namespace SecureMesh.Storage;

/// <summary>
/// An IPv4 or IPv6 address range in CIDR form (<c>10.0.0.0/8</c>, <c>2001:db8::/32</c>; a bare address is a /32 or /128).
/// Host bits are cleared, so <c>10.1.2.3/8</c> is <c>10.0.0.0/8</c>.
/// An IPv4 address has two spellings (<c>127.0.0.5</c> and the IPv4-mapped <c>::ffff:127.0.0.5</c>); a range is only
/// ever kept in one: a mapped range of /96 or longer is stored as the IPv4 range it means (<c>::ffff:10.0.0.0/104</c> is
/// <c>10.0.0.0/8</c>), on input and when read back, and an address is matched in both spellings (an IPv4 address
/// also against IPv6 ranges that cover the mapped space, such as <c>::/0</c>).
/// </summary>
public readonly struct CidrRange : IEquatable<CidrRange>
{
    private readonly UInt128 _network;
    private readonly UInt128 _mask;

    private CidrRange(AddressFamily family, UInt128 network, int prefixLength)
    {
        Family = family;
        PrefixLength = prefixLength;
        var bits = family == AddressFamily.InterNetwork ? 32 : 128;
        _mask = prefixLength == 0 ? UInt128.Zero : UInt128.MaxValue << (bits - prefixLength);
        if (bits == 32)
        {
            _mask &= uint.MaxValue;
        }
        _network = network & _mask;
    }

    /// <summary>InterNetwork or InterNetworkV6.</summary>
    public AddressFamily Family { get; }

    /// <summary>Number of leading bits that are fixed.</summary>
    public int PrefixLength { get; }

    /// <summary>The network address bytes (4 or 16, host bits zero).</summary>
    public byte[] NetworkBytes()
    {
        if (Family == AddressFamily.InterNetwork)
        {
            var bytes = new byte[4];
            BinaryPrimitives.WriteUInt32BigEndian(bytes, (uint)_network);
            return bytes;
        }
        var v6 = new byte[16];
        BinaryPrimitives.WriteUInt128BigEndian(v6, _network);
        return v6;
    }

    /// <summary>Parses CIDR text; throws <see cref="SecureMeshException"/> (InvalidInput) with the reason.</summary>
    public static CidrRange Parse(string? text)
    {
        if (TryParse(text, out var range, out var error))
        {
            return range;
        }
        throw new SecureMeshException(SecureMeshErrorKind.InvalidInput, error);
    }

    /// <summary>Parses CIDR text, giving the reason on failure.</summary>
    public static bool TryParse(string? text, out CidrRange range, [NotNullWhen(false)] out string? error)
    {
        range = default;
        if (string.IsNullOrWhiteSpace(text))
        {
            error = "invalid address range: empty";
            return false;
        }
        var shown = text.Length > 64 ? text[..64] + "…" : text;
        var trimmed = text.Trim();
        var slash = trimmed.IndexOf('/', StringComparison.Ordinal);
        var addressText = slash < 0 ? trimmed : trimmed[..slash];
        // IPAddress.TryParse also accepts forms like "1" or "0x7f.1"; demand the usual dotted quad or a colon form.
        var looksV4 = addressText.Length > 0 && addressText.All(c => char.IsAsciiDigit(c) || c == '.') && addressText.Count(c => c == '.') == 3;
        var looksV6 = addressText.Contains(':', StringComparison.Ordinal) && !addressText.Contains('%', StringComparison.Ordinal);
        if (!(looksV4 || looksV6) || !IPAddress.TryParse(addressText, out var address))
        {
            error = $"invalid address range '{shown}': '{(addressText.Length > 64 ? addressText[..64] : addressText)}' is not an IPv4 or IPv6 address (expected e.g. 10.0.0.0/8 or 2001:db8::/32)";
            return false;
        }
        var max = address.AddressFamily == AddressFamily.InterNetwork ? 32 : 128;
        var prefix = max;
        if (slash >= 0)
        {
            var prefixText = trimmed[(slash + 1)..];
            if (prefixText.Length == 0 || prefixText.Length > 3 || !prefixText.All(char.IsAsciiDigit)
                || !int.TryParse(prefixText, NumberStyles.None, CultureInfo.InvariantCulture, out prefix) || prefix > max)
            {
                error = $"invalid address range '{shown}': prefix length must be a number from 0 to {max}";
                return false;
            }
        }
        range = Canonical(address.AddressFamily, ToNumber(address), prefix);
        error = null;
        return true;
    }

    /// <summary>Rebuilds a range from stored network bytes (a mapped range stored by older code comes back as IPv4).</summary>
    internal static CidrRange FromStored(byte[] network, int prefixLength) =>
        Canonical(network.Length == 4 ? AddressFamily.InterNetwork : AddressFamily.InterNetworkV6, ToNumber(new IPAddress(network)), prefixLength);

    /// <summary>The same range in its other spelling: an IPv4 range as the IPv4-mapped IPv6 range (null for IPv6 ranges).</summary>
    internal CidrRange? MappedSpelling() =>
        Family == AddressFamily.InterNetwork ? new CidrRange(AddressFamily.InterNetworkV6, MappedPrefix | _network, PrefixLength + 96) : null;

    // ::ffff:0:0/96, the IPv4-mapped block.
    private static readonly UInt128 MappedPrefix = (UInt128)0xFFFF << 32;
    private static readonly UInt128 MappedMask = UInt128.MaxValue << 32;

    private static CidrRange Canonical(AddressFamily family, UInt128 number, int prefix) =>
        family == AddressFamily.InterNetworkV6 && prefix >= 96 && (number & MappedMask) == MappedPrefix
            ? new CidrRange(AddressFamily.InterNetwork, number & uint.MaxValue, prefix - 96)
            : new CidrRange(family, number, prefix);

    /// <summary>True when <paramref name="address"/> lies in this range.</summary>
    public bool Contains(IPAddress address)
    {
        ArgumentNullException.ThrowIfNull(address);
        if (address.IsIPv4MappedToIPv6)
        {
            address = address.MapToIPv4();
        }
        return Contains(address.AddressFamily, ToNumber(address));
    }

    /// <summary>Matches a normalised address (IPv4 as IPv4): an IPv4 address also lies in an IPv6 range holding its mapped form.</summary>
    internal bool Contains(AddressFamily family, UInt128 number)
    {
        if (family == Family)
        {
            return (number & _mask) == _network;
        }
        return family == AddressFamily.InterNetwork && Family == AddressFamily.InterNetworkV6 && ((MappedPrefix | number) & _mask) == _network;
    }

    internal static UInt128 ToNumber(IPAddress address)
    {
        Span<byte> bytes = stackalloc byte[16];
        if (!address.TryWriteBytes(bytes, out var written))
        {
            throw new ArgumentException("unsupported address", nameof(address));
        }
        return written == 4 ? BinaryPrimitives.ReadUInt32BigEndian(bytes) : BinaryPrimitives.ReadUInt128BigEndian(bytes);
    }

    /// <summary>The canonical text, e.g. <c>10.0.0.0/8</c>.</summary>
    public override string ToString() => $"{new IPAddress(NetworkBytes())}/{PrefixLength.ToString(CultureInfo.InvariantCulture)}";

    /// <inheritdoc/>
    public bool Equals(CidrRange other) => Family == other.Family && PrefixLength == other.PrefixLength && _network == other._network;

    /// <inheritdoc/>
    public override bool Equals(object? obj) => obj is CidrRange other && Equals(other);

    /// <inheritdoc/>
    public override int GetHashCode() => HashCode.Combine(Family, PrefixLength, _network);

    /// <summary>Equality.</summary>
    public static bool operator ==(CidrRange left, CidrRange right) => left.Equals(right);

    /// <summary>Inequality.</summary>
    public static bool operator !=(CidrRange left, CidrRange right) => !left.Equals(right);
}
