      * Transaction record: REDEFINES views, binary, floating point,
      * edited pictures, P scaling, SYNC and JUSTIFIED.
       01  TRAN-RECORD.
           05  TRAN-ID                 PIC 9(10) COMP.
           05  TRAN-KIND               PIC X.
           05  TRAN-DATA               PIC X(20).
           05  TRAN-PAYMENT REDEFINES TRAN-DATA.
               10  PAY-AMOUNT          PIC S9(13)V99 COMP-3.
               10  PAY-CURRENCY        PIC X(3).
               10  PAY-ACCOUNT         PIC 9(9).
           05  TRAN-TRANSFER REDEFINES TRAN-DATA.
               10  XFER-FROM           PIC 9(8) COMP-5.
               10  XFER-TO             PIC S9(8) BINARY.
               10  XFER-RATE           COMP-2.
               10  XFER-FEE            USAGE COMP-1.
           05  TRAN-AMOUNTS            PIC S9(5)V99 COMP-3
                                       OCCURS 3 TIMES.
           05  TRAN-DISPLAY-AMT        PIC -ZZ,ZZ9.99.
           05  TRAN-CR                 PIC $$$9.99CR.
           05  TRAN-SCALED             PIC 9(3)PP.
           05  TRAN-SMALL              PIC VPP99.
           05  TRAN-NOTE               PIC X(8) JUSTIFIED RIGHT.
           05  TRAN-COUNT              PIC S9(4) COMP-5 SYNC.
           05  TRAN-TOTAL              PIC S9(18) COMP.
           05  TRAN-BIG                PIC S9(25)V9(4) COMP-3.
