package gateway.reader;

public class Main { public static void main(String[] a) {} }
