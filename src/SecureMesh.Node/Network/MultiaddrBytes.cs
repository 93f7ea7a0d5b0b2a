using System.Net;
using System.Net.Sockets;

namespace SecureMesh.Node.Network;

/// <summary>The multiaddr of a TCP endpoint (<c>/ip4|ip6/…/tcp/…</c>) in binary and text form (multiformats/multiaddr).</summary>
internal static class MultiaddrBytes
{
    // The codes are below 0x80: each is its own one-byte varint.
    private const int Ip4 = 0x04;
    private const int Tcp = 0x06;
    private const int Ip6 = 0x29;

    /// <summary>The binary multiaddr: code varint, address bytes, then <c>tcp</c> and the port big-endian.</summary>
    public static byte[] From(IPEndPoint endPoint)
    {
        var address = endPoint.Address.IsIPv4MappedToIPv6 ? endPoint.Address.MapToIPv4() : endPoint.Address;
        var v4 = address.AddressFamily == AddressFamily.InterNetwork;
        var bytes = address.GetAddressBytes();
        var result = new byte[1 + bytes.Length + 1 + 2];
        result[0] = v4 ? (byte)Ip4 : (byte)Ip6;
        bytes.CopyTo(result, 1);
        result[1 + bytes.Length] = Tcp;
        result[^2] = (byte)(endPoint.Port >> 8);
        result[^1] = (byte)endPoint.Port;
        return result;
    }

    /// <summary>The text form, e.g. <c>/ip4/127.0.0.1/tcp/4747</c>.</summary>
    public static string Text(IPEndPoint endPoint)
    {
        var address = endPoint.Address.IsIPv4MappedToIPv6 ? endPoint.Address.MapToIPv4() : endPoint.Address;
        var family = address.AddressFamily == AddressFamily.InterNetwork ? "ip4" : "ip6";
        // Scope IDs are not part of an ip6 multiaddr.
        var text = address.AddressFamily == AddressFamily.InterNetworkV6 ? new IPAddress(address.GetAddressBytes()).ToString() : address.ToString();
        return $"/{family}/{text}/tcp/{endPoint.Port}";
    }
}
